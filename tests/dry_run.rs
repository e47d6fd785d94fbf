//! `archc train --dry-run` shows the resolved recipe, also where the data are not there yet
//! (the commands of docs/reproduction.md's Table 6 for someone about to fetch CIFAR-10).
#![cfg(feature = "runtime")]

use assert_cmd::Command;

#[test]
fn dry_run_without_the_data_prints_the_recipe_and_says_the_data_are_missing() {
    let dir = tempfile::tempdir().unwrap();
    let zoo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("architectures");
    let out = Command::cargo_bin("archc")
        .unwrap()
        .arg("train")
        .arg(zoo.join("cifar.arch"))
        .args([
            "--network",
            "cifar_resnet110",
            "--warmup",
            "400:0.01",
            "--dry-run",
        ])
        .arg("--data")
        .arg(format!("cifar10:{}", dir.path().join("absent").display()))
        .arg("--out")
        .arg(dir.path().join("run"))
        .assert()
        .code(1);
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    let config: serde_json::Value = serde_json::from_str(&stdout).expect("the configuration");
    let t = &config["train"];
    assert_eq!(t["iterations"], 64000);
    assert_eq!(t["batch_size"], 128);
    assert_eq!(t["lr"], 0.1);
    assert_eq!(t["milestones"], serde_json::json!([32000, 48000]));
    assert_eq!(t["momentum"], 0.9);
    assert_eq!(t["weight_decay"], 0.0001);
    assert_eq!(config["params"], 1_727_962);
    assert_eq!(config["classes"], 10);
    assert!(
        stderr.contains("not opened") && stderr.contains("absent"),
        "{stderr}"
    );
    assert!(!dir.path().join("run").exists(), "a dry run writes nothing");
}
