//! Agreement with the compiler for every zoo network: Burn's own count of trainable
//! parameters equals the compiler's, and a forward pass gives the inferred logits shape.

mod common;

use archc_runtime::Network;

/// Every root network of every file in architectures/, at its declared input (224x224 for
/// ImageNet nets; parameters do not depend on the input size). Parameters are lazy, so this
/// builds even cifar_resnet1202 and vgg19 without drawing a single weight.
#[test]
fn trainable_parameters_equal_the_compilers_for_every_zoo_network() {
    let device = common::device();
    let mut checked = 0;
    for file in common::zoo_files() {
        for g in common::lowered_file(&file, None) {
            let net = Network::new(&g, &device, 0).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(net.num_trainable_params(), g.params, "{}", g.network);
            // Burn's num_params() also counts batch norm running statistics (2 per channel).
            let bn: u64 = g
                .nodes
                .iter()
                .map(|n| match n.op {
                    archc_compiler::lower::LoweredOp::BatchNorm { num_features, .. } => {
                        2 * num_features as u64
                    }
                    _ => 0,
                })
                .sum();
            assert_eq!(net.num_buffers(), bn, "{}", g.network);
            assert_eq!(burn::module::Module::num_params(&net) as u64, g.params + bn);
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} zoo networks found");
}

/// Every CIFAR network (3x32x32, batch 2; cifar_resnet1202 with batch 1).
#[test]
fn forward_shape_cifar() {
    let file = common::architectures().join("cifar.arch");
    for g in common::lowered_file(&file, None) {
        let batch = if g.network == "cifar_resnet1202" {
            1
        } else {
            2
        };
        common::forward_shape(&g, batch);
    }
}

/// ImageNet ResNets at `--input 3x64x64` (conv1 and the pool bring it to 16x16, stage 5 runs
/// at 2x2), batch 1. A representative subset, to keep debug-build test time low: every block
/// type (basic, bottleneck v1, bottleneck_tv) and shortcut option (none, A, B, C). The deeper
/// ones (resnet101/152 and their _tv forms) only repeat these blocks; their parameter count is
/// checked above.
#[test]
fn forward_shape_resnet_subset() {
    let file = common::architectures().join("resnet.arch");
    let subset = [
        "resnet18",
        "resnet50",
        "resnet50_tv",
        "plain18",
        "resnet34_a",
        "resnet34_c",
    ];
    let mut seen = 0;
    for g in common::lowered_file(&file, Some(&[3, 64, 64])) {
        if subset.contains(&g.network.as_str()) {
            common::forward_shape(&g, 1);
            seen += 1;
        }
    }
    assert_eq!(seen, subset.len());
}

/// VGG at `--input 3x32x32`: the five pools bring it to 1x1 and the adaptive average pool
/// replicates that to 7x7 (as PyTorch does), so the classifier keeps its 25088 inputs.
/// vgg11 and vgg11_bn only: the classifier's 120M weights dominate and are the same for all
/// depths; the others' parameter counts are checked above.
#[test]
fn forward_shape_vgg_subset() {
    let file = common::architectures().join("vgg.arch");
    let subset = ["vgg11", "vgg11_bn"];
    let mut seen = 0;
    for g in common::lowered_file(&file, Some(&[3, 32, 32])) {
        if subset.contains(&g.network.as_str()) {
            common::forward_shape(&g, 1);
            seen += 1;
        }
    }
    assert_eq!(seen, subset.len());
}

/// The networks the tests above leave out (the rest of resnet.arch and vgg.arch, and the deep
/// ones of the other files), so that every zoo network has its forward shape checked: batch 1,
/// and the ImageNet networks at `--input 3x32x32` (the smallest input their strides allow;
/// VGG's adaptive pool brings 1x1 back to 7x7).
#[test]
fn forward_shape_of_the_remaining_networks_at_32x32() {
    let done_elsewhere = [
        "resnet18",
        "resnet50",
        "resnet50_tv",
        "plain18",
        "resnet34_a",
        "resnet34_c",
        "vgg11",
        "vgg11_bn",
    ];
    let deep_elsewhere_skipped = common::DEEP_ZOO;
    let mut checked = 0;
    for file in ["resnet.arch", "vgg.arch"] {
        for g in common::lowered_file(&common::architectures().join(file), Some(&[3, 32, 32])) {
            if !done_elsewhere.contains(&g.network.as_str()) {
                common::forward_shape(&g, 1);
                checked += 1;
            }
        }
    }
    for file in common::zoo_files() {
        for g in common::lowered_file(&file, None) {
            if deep_elsewhere_skipped.contains(&g.network.as_str()) {
                let name = file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                let g = if g.input == [3, 224, 224] {
                    common::lowered(name, &g.network, Some(&[3, 32, 32]))
                } else {
                    g
                };
                common::forward_shape(&g, 1);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 13 - 6 + 8 - 2 + deep_elsewhere_skipped.len());
}
