//! Forward shapes of the zoo files that `zoo.rs` does not cover (every family but the ResNets,
//! VGG and the CIFAR networks): a test binary of its own, so that its memory, which the
//! allocator keeps after each network, does not add to that of `zoo.rs`'s tests.

mod common;

/// The networks of the other zoo files (MLPs, Highway, MobileNet, pre-activation, ResNeXt,
/// wide ResNets, CIFAR-100, the branching families, ...), batch 2, at the declared input,
/// except that ImageNet nets run at `--input 3x64x64` (Inception-v3 at its 299x299, batch 1).
/// Skipped for debug-build time (each over ~3 s), as deeper copies of a block type run here:
/// vgg19_bn_c100, preact_resnet101/152, cifar_preact_resnet1001, resnext101_32x8d/64x4d,
/// wide_resnet101_2. Their parameter counts are checked in `zoo.rs`; `zoo.rs` also runs them.
#[test]
fn forward_shape_rest_of_the_zoo() {
    let covered = ["cifar.arch", "resnet.arch", "vgg.arch"];
    let slow = common::DEEP_ZOO;
    for file in common::zoo_files() {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if covered.contains(&name) {
            continue;
        }
        for g in common::lowered_file(&file, None) {
            if slow.contains(&g.network.as_str()) {
                continue;
            }
            // ImageNet networks (224x224 and up: EfficientNet-B7 is 600x600) at 64x64; not
            // Inception-v3, whose auxiliary head needs its 299x299 (a 5x5 pool of a 17x17 map).
            let g = match g.input[..] {
                [3, h, _] if h > 64 && g.network != "inception_v3" => {
                    common::lowered(name, &g.network, Some(&[3, 64, 64]))
                }
                _ => g,
            };
            let batch = if g.network == "inception_v3" { 1 } else { 2 };
            common::forward_shape(&g, batch);
        }
    }
}
