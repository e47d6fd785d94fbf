//! Every file of the zoo: a snapshot of each network's report (a glob, so a new file is covered
//! without a new test), and golden tests of the figures in README.md and docs/reproduction.md to the last digit
//! (tests/docs_figures.rs checks the docs' tables themselves against the reports).

use std::path::Path;

use archc_compiler::analysis::{analyse, NetworkReport};
use archc_compiler::{build_network, load_path, report, Overrides};

fn reports(file: &str, ov: &Overrides) -> Vec<NetworkReport> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("architectures")
        .join(file);
    let (sources, prog) = load_path(&path);
    let prog = match prog {
        Ok(p) => p,
        Err(archc_compiler::LoadError::Diagnostics(d)) => panic!("{}", d.render_plain(&sources)),
        Err(e) => panic!("{e:?}"),
    };
    prog.root_networks
        .iter()
        .map(|n| match build_network(&prog, n, ov) {
            Ok(t) => analyse(&t, 1),
            Err(d) => panic!("{n}: {}", d.render_plain(&sources)),
        })
        .collect()
}

fn find<'a>(rs: &'a [NetworkReport], name: &str) -> &'a NetworkReport {
    rs.iter()
        .find(|r| r.network == name)
        .unwrap_or_else(|| panic!("no network {name}"))
}

#[test]
fn zoo_report_snapshots() {
    insta::glob!("../architectures", "*.arch", |path| {
        let (sources, prog) = load_path(path);
        let prog = match prog {
            Ok(p) => p,
            Err(archc_compiler::LoadError::Diagnostics(d)) => {
                panic!("{}", d.render_plain(&sources))
            }
            Err(e) => panic!("{e:?}"),
        };
        let mut text = String::new();
        for n in &prog.root_networks {
            let t = build_network(&prog, n, &Overrides::default())
                .unwrap_or_else(|d| panic!("{n}: {}", d.render_plain(&sources)));
            text.push_str(&report::table::render(&analyse(&t, 1), false));
            text.push('\n');
        }
        if text.is_empty() {
            text = "(a library: no networks)\n".into();
        }
        insta::assert_snapshot!(text);
    });
}

/// torchvision's parameter counts (README.md's zoo table), exact.
#[test]
fn torchvision_parameter_counts() {
    let r = reports("resnet.arch", &Overrides::default());
    for (name, params) in [
        ("resnet18", 11_689_512u128),
        ("resnet34", 21_797_672),
        ("resnet50", 25_557_032),
        ("resnet101", 44_549_160),
        ("resnet152", 60_192_808),
        ("resnet50_tv", 25_557_032),
        ("resnet101_tv", 44_549_160),
        ("resnet152_tv", 60_192_808),
    ] {
        assert_eq!(find(&r, name).params, params, "{name}");
    }
    let v = reports("vgg.arch", &Overrides::default());
    for (name, params) in [
        ("vgg11", 132_863_336u128),
        ("vgg13", 133_047_848),
        ("vgg16", 138_357_544),
        ("vgg19", 143_667_240),
        ("vgg11_bn", 132_868_840),
        ("vgg13_bn", 133_053_736),
        ("vgg16_bn", 138_365_992),
        ("vgg19_bn", 143_678_248),
    ] {
        assert_eq!(find(&v, name).params, params, "{name}");
    }
}

/// Networks that branch and merge, against torchvision's counts (`sum(p.numel() for p in
/// m.parameters())` of torchvision 0.24): GoogLeNet with its auxiliary heads is 13,004,888,
/// and 6,624,904 without them (`googlenet(aux_logits=False)`), the main output's own count.
#[test]
fn branching_networks_match_torchvision() {
    let r = reports("googlenet.arch", &Overrides::default());
    let g = find(&r, "googlenet");
    assert_eq!(g.params, 13_004_888);
    assert_eq!(g.outputs.len(), 3);
    assert_eq!(g.outputs[0].name, "head");
    assert_eq!(g.outputs[0].params, 6_624_904);
    assert_eq!(g.outputs[1].weight, 0.3);
    // torchvision publishes 1.498 GFLOPS (its mult-adds) for evaluation: the main output alone.
    assert!(
        (giga(g.outputs[0].macs) - 1.498).abs() <= 0.00051,
        "{}",
        g.outputs[0].macs
    );

    // (file, network, torchvision's parameters, torchvision's published GFLOPS): torchvision
    // 0.24's `weights.meta["num_params"]` and `weights.meta["_ops"]` (three decimals, or two
    // where it prints two), at the crop size of each one's weights (`weights.transforms()`).
    for (file, name, params, gflops) in [
        ("alexnet.arch", "alexnet", 61_100_840u128, 0.714),
        ("squeezenet.arch", "squeezenet1_0", 1_248_424, 0.819),
        ("squeezenet.arch", "squeezenet1_1", 1_235_496, 0.349),
        ("densenet.arch", "densenet121", 7_978_856, 2.834),
        ("densenet.arch", "densenet161", 28_681_000, 7.728),
        ("densenet.arch", "densenet169", 14_149_480, 3.36),
        ("densenet.arch", "densenet201", 20_013_928, 4.291),
        ("efficientnet.arch", "efficientnet_b0", 5_288_548, 0.386),
        ("efficientnet.arch", "efficientnet_b1", 7_794_184, 0.687),
        ("efficientnet.arch", "efficientnet_b2", 9_109_994, 1.088),
        ("efficientnet.arch", "efficientnet_b3", 12_233_232, 1.827),
        ("efficientnet.arch", "efficientnet_b4", 19_341_616, 4.394),
        ("efficientnet.arch", "efficientnet_b5", 30_389_784, 10.266),
        ("efficientnet.arch", "efficientnet_b6", 43_040_704, 19.068),
        ("efficientnet.arch", "efficientnet_b7", 66_347_960, 37.746),
        ("efficientnet.arch", "efficientnet_v2_s", 21_458_488, 8.366),
        ("mobilenet_v3.arch", "mobilenet_v3_large", 5_483_032, 0.217),
        ("mobilenet_v3.arch", "mobilenet_v3_small", 2_542_856, 0.057),
        ("shufflenet.arch", "shufflenet_v2_x0_5", 1_366_792, 0.04),
        ("shufflenet.arch", "shufflenet_v2_x1_0", 2_278_604, 0.145),
        ("shufflenet.arch", "shufflenet_v2_x1_5", 3_503_624, 0.296),
        ("shufflenet.arch", "shufflenet_v2_x2_0", 7_393_996, 0.583),
        ("regnet.arch", "regnet_x_400mf", 5_495_976, 0.414),
        ("regnet.arch", "regnet_y_400mf", 4_344_144, 0.402),
        ("mnasnet.arch", "mnasnet0_5", 2_218_512, 0.104),
        ("mnasnet.arch", "mnasnet1_0", 4_383_312, 0.314),
        ("convnext.arch", "convnext_tiny", 28_589_128, 4.456),
        ("convnext.arch", "convnext_small", 50_223_688, 8.684),
    ] {
        let r = reports(file, &Overrides::default());
        let n = find(&r, name);
        assert_eq!(n.params, params, "{name}");
        // Half a unit of the last printed digit (mnasnet0_5 is 0.1045 G, printed 0.104).
        let tolerance = if (gflops * 100.0_f64).fract() == 0.0 {
            0.005
        } else {
            0.00051
        };
        assert!(
            (giga(n.macs) - gflops).abs() <= tolerance,
            "{name}: {}",
            n.macs
        );
    }
    // Networks with auxiliary heads: evaluation runs the main output alone, and torchvision's
    // figure is that one's (with `aux_logits=False` the parameters are the main output's own).
    let r = reports("inception.arch", &Overrides::default());
    let n = find(&r, "inception_v3");
    assert_eq!(n.params, 27_161_264);
    assert_eq!(n.outputs[0].params, 23_834_568);
    assert!(
        (giga(n.outputs[0].macs) - 5.713).abs() <= 0.00051,
        "{}",
        n.outputs[0].macs
    );
    // SE-ResNet-50 (Hu et al. 2018, Table 2: 28.09 M parameters; reduction 16). The paper gives
    // 3.87 GFLOPs; archc's mult-adds are 3.860 G (ResNet-50's 3.858 G and 2.5 M for the gates'
    // fc layers): the paper's figure also counts the gates' pooling and scaling, which are not
    // multiply-adds.
    let r = reports("senet.arch", &Overrides::default());
    let n = find(&r, "se_resnet50");
    assert_eq!(n.params, 28_088_024);
    assert!((giga(n.macs) - 3.860).abs() < 0.0005, "{}", n.macs);
}

#[test]
fn cifar_parameter_counts() {
    let r = reports("cifar.arch", &Overrides::default());
    for (name, params) in [
        ("cifar_resnet20", 269_722u128),
        ("cifar_resnet32", 464_154),
        ("cifar_resnet44", 658_586),
        ("cifar_resnet56", 853_018),
        ("cifar_resnet110", 1_727_962),
        ("cifar_resnet1202", 19_421_274),
    ] {
        assert_eq!(find(&r, name).params, params, "{name}");
        // Option A adds no parameters: the plain net has exactly as many.
        let plain = name.replace("resnet", "plain");
        if let Some(p) = r.iter().find(|x| x.network == plain) {
            assert_eq!(p.params, params, "{plain}");
        }
    }
}

fn giga(macs: u128) -> f64 {
    macs as f64 / 1e9
}

/// torchvision's mult-adds (v1.5 bottleneck) to the published three decimals.
#[test]
fn torchvision_mult_adds() {
    let r = reports("resnet.arch", &Overrides::default());
    for (name, g) in [
        ("resnet18", 1.814),
        ("resnet34", 3.664),
        ("resnet50_tv", 4.089),
        ("resnet101_tv", 7.801),
        ("resnet152_tv", 11.514),
    ] {
        let ours = giga(find(&r, name).macs);
        assert!((ours - g).abs() < 0.0005, "{name}: {ours} vs {g}");
    }
    let v = reports("vgg.arch", &Overrides::default());
    for (name, g) in [
        ("vgg16", 15.47),
        ("vgg16_bn", 15.47),
        ("vgg19", 19.63),
        ("vgg19_bn", 19.63),
    ] {
        let ours = giga(find(&v, name).macs);
        assert!((ours - g).abs() < 0.005, "{name}: {ours} vs {g}");
    }
}

/// The paper's Table 1 row (v1 bottleneck): exact to three decimals as docs/reproduction.md has them,
/// and within one unit of the last digit the paper prints (1.8 / 3.6 / 3.8 / 7.6 / 11.3).
#[test]
fn paper_table1_flops_row() {
    let r = reports("resnet.arch", &Overrides::default());
    for (name, exact, printed) in [
        ("resnet18", 1.814, 1.8),
        ("resnet34", 3.664, 3.6),
        ("resnet50", 3.858, 3.8),
        ("resnet101", 7.570, 7.6),
        ("resnet152", 11.282, 11.3),
    ] {
        let ours = giga(find(&r, name).macs);
        assert!((ours - exact).abs() < 0.0005, "{name}: {ours} vs {exact}");
        assert!(
            (ours - printed).abs() < 0.1,
            "{name}: {ours} vs the paper's {printed}"
        );
    }
    // Figure 3: VGG-19 19.6 G, 34-layer plain 3.6 G, 34-layer residual 3.6 G.
    let v = reports("vgg.arch", &Overrides::default());
    assert!((giga(find(&v, "vgg19").macs) - 19.6).abs() < 0.05);
    assert!((giga(find(&r, "plain34").macs) - 3.6).abs() < 0.05);
    assert!((giga(find(&r, "resnet34").macs) - 3.6).abs() < 0.1);
}

#[test]
fn shortcut_options_order_parameters() {
    let r = reports("resnet.arch", &Overrides::default());
    let (a, b, c) = (
        find(&r, "resnet34_a").params,
        find(&r, "resnet34_b").params,
        find(&r, "resnet34_c").params,
    );
    assert_eq!(a, find(&r, "plain34").params, "option A adds no parameters");
    assert!(a < b && b < c);
    assert_eq!(b, 21_797_672);
}

#[test]
fn overrides_make_cifar_variants() {
    let ov = Overrides {
        input: Some(vec![3, 32, 32]),
        classes: Some(100),
    };
    let r = reports("resnet.arch", &ov);
    let r18 = find(&r, "resnet18");
    assert_eq!(r18.output, vec![100]);
    // 11,689,512 - 513,000 (fc 512->1000) + 51,300 (fc 512->100)
    assert_eq!(r18.params, 11_689_512 - 513_000 + 51_300);
    assert_eq!(r18.input, vec![3, 32, 32]);
}

#[test]
fn parameters_are_the_sum_over_layers_and_stages() {
    for file in ["resnet.arch", "vgg.arch", "cifar.arch"] {
        for r in reports(file, &Overrides::default()) {
            let layers: u128 = r.layers.iter().map(|l| l.params).sum();
            let stages: u128 = r.stages.iter().map(|s| s.params).sum();
            let macs: u128 = r.layers.iter().map(|l| l.macs).sum();
            assert_eq!(layers, r.params, "{}", r.network);
            assert_eq!(stages, r.params, "{}", r.network);
            assert_eq!(macs, r.macs, "{}", r.network);
            assert!(r.flops > 2 * r.macs, "{}", r.network);
        }
    }
}
