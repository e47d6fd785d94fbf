//! `textures[:N]`, the harder generated set: parsed like `synthetic`, the same images on every
//! run, balanced over the classes, and distinct from the gratings of `synthetic`.

use archc_runtime::data::{self, DataSpec, Expect};

const CIFAR: Expect = Expect {
    input: [3, 32, 32],
    classes: 10,
};

#[test]
fn the_spec_parses_and_prints() {
    assert_eq!("textures".parse(), Ok(DataSpec::Textures { len: 5000 }));
    assert_eq!("textures:64".parse(), Ok(DataSpec::Textures { len: 64 }));
    assert_eq!(DataSpec::Textures { len: 64 }.to_string(), "textures:64");
    for bad in ["textures:0", "textures:many"] {
        let e = bad.parse::<DataSpec>().expect_err(bad);
        assert!(e.contains("textures"), "{e}");
    }
}

#[test]
fn textures_are_deterministic_balanced_and_not_the_gratings() {
    let spec = DataSpec::Textures { len: 200 };
    let a = data::open(&spec, CIFAR).expect("opens");
    let b = data::open(&spec, CIFAR).expect("opens");
    let g = data::open(&DataSpec::Synthetic { len: 200 }, CIFAR).expect("opens");
    assert!(
        a.train.name().starts_with("textures train"),
        "{}",
        a.train.name()
    );
    assert_eq!(a.test.as_ref().map(|t| t.len()), Some(40));
    let mut per_class = [0usize; 10];
    for j in 0..a.train.len() {
        let x = a.train.image(j).expect("image");
        assert_eq!(x, b.train.image(j).expect("image"), "image {j} differs");
        assert_ne!(x, g.train.image(j).expect("image"));
        assert_eq!(x.pixels.len(), 3 * 32 * 32);
        per_class[a.train.label(j)] += 1;
    }
    assert_eq!(per_class, [20; 10]);
    assert_ne!(
        a.train.image(3).expect("img"),
        a.test.as_ref().expect("test").image(3).expect("img")
    );
}
