//! `archc train` over several processes on c10d (docs/training.md, "Several processes and
//! machines"): `torchrun --nproc-per-node 2 --standalone --no-python archc train ...` on
//! LibTorch's CPU over the loopback address, against one process; batch norm's per-process
//! statistics; a killed peer and a peer that never comes; resume of a two-process run.
//!
//! Only with the `tch` feature, run inside `scripts/libtorch.sh` (which puts the venv's
//! `torchrun` on PATH): `scripts/libtorch.sh cargo test --features tch --test distributed`.
#![cfg(feature = "tch")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Residual, no batch norm (the network of runtime/tests/devices.rs): two processes compute
/// the same function of the batch as one.
const NO_BN: &str = include_str!("../runtime/tests/fixtures/nobn.arch");

/// A tiny residual network with batch norm (network `tiny`).
const TINY: &str = include_str!("../runtime/tests/fixtures/tiny.arch");

fn archc() -> PathBuf {
    assert_cmd::cargo::cargo_bin("archc")
}

/// The venv's torchrun, which scripts/libtorch.sh puts on PATH.
fn torchrun() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("torchrun"))
        .find(|p| p.is_file())
        .expect("torchrun is not on PATH: run this test inside scripts/libtorch.sh")
}

/// `archc train FILE -n NET --out OUT` on 200 synthetic images, LibTorch's CPU, `its`
/// iterations of batch 16 (augmentation on: each process draws its shard's crops and flips).
fn train_args(file: &Path, net: &str, out: &Path, its: u64) -> Vec<String> {
    [
        "train",
        file.to_str().unwrap(),
        "-n",
        net,
        "--data",
        "synthetic:200",
        "--device",
        "libtorch-cpu",
        "--batch-size",
        "16",
        "--iterations",
        &its.to_string(),
        "--log-every",
        "2",
        "--eval-every",
        "4",
        "--progress",
        "lines",
        "--out",
        out.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// One process.
fn one(args: &[String]) -> Output {
    ok(Command::new(archc()).args(args).output().unwrap())
}

/// Two processes under torchrun, as docs/training.md shows it.
fn two(args: &[String]) -> Output {
    ok(Command::new(torchrun())
        .args(["--nproc-per-node", "2", "--standalone", "--no-python"])
        .arg(archc())
        .args(args)
        .output()
        .unwrap())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The metric rows of a run folder, timing columns left out, by column name.
fn rows(run: &Path) -> Vec<HashMap<String, Option<f64>>> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            head.iter()
                .zip(l.split(','))
                .filter(|(h, _)| !matches!(**h, "images_per_s" | "elapsed_s"))
                .map(|(h, v)| (h.to_string(), v.parse::<f64>().ok()))
                .collect()
        })
        .collect()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-30)
}

/// Every metric of every row within `rel` (relative); the same rows, the same columns filled.
fn same_rows(a: &Path, b: &Path, rel: f64) {
    let (ra, rb) = (rows(a), rows(b));
    assert_eq!(ra.len(), rb.len(), "row counts");
    for (x, y) in ra.iter().zip(&rb) {
        for (k, v) in x {
            match (v, &y[k]) {
                (Some(p), Some(q)) => assert!(close(*p, *q, rel), "{k}: {p} against {q}"),
                (p, q) => assert_eq!(p, q, "{k}"),
            }
        }
    }
}

/// The tensors of `RUN/checkpoints/last/model.safetensors` as f32.
fn weights(run: &Path) -> HashMap<String, Vec<f32>> {
    let buf = std::fs::read(run.join("checkpoints/last/model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&buf).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, v)| {
            let values = v
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (name, values)
        })
        .collect()
}

/// Each tensor's largest difference relative to its largest value.
fn difference(a: &[f32], b: &[f32]) -> f64 {
    let diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() as f64)
        .fold(0.0, f64::max);
    let scale = b.iter().map(|y| y.abs() as f64).fold(0.0, f64::max);
    diff / scale.max(1e-30)
}

fn is_running_stat(name: &str) -> bool {
    name.ends_with("running_mean") || name.ends_with("running_var")
}

/// Every tensor (but the running statistics, with `skip_running`) within `rel`.
fn same_weights(a: &Path, b: &Path, rel: f64, skip_running: bool) {
    let (wa, wb) = (weights(a), weights(b));
    assert_eq!(
        wa.keys().collect::<std::collections::BTreeSet<_>>(),
        wb.keys().collect()
    );
    for (k, x) in &wa {
        if skip_running && is_running_stat(k) {
            continue;
        }
        let d = difference(x, &wb[k]);
        assert!(d <= rel, "{k}: relative difference {d}");
    }
}

#[test]
fn two_processes_train_a_network_without_batch_norm_as_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "nobn.arch", NO_BN);
    let (r1, r2) = (dir.path().join("one"), dir.path().join("two"));
    one(&train_args(&f, "nobn", &r1, 8));
    let o = two(&train_args(&f, "nobn", &r2, 8));
    same_rows(&r1, &r2, 1e-5);
    same_weights(&r1, &r2, 1e-5, false);
    // Rank 0 alone prints (and writes): one opening line, one closing line.
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("training `nobn`").count(), 1, "{err}");
    assert!(err.contains("2 processes, libtorch-cpu each"), "{err}");
    assert_eq!(err.matches("finished at iteration 8").count(), 1, "{err}");
}

#[test]
fn with_batch_norm_each_process_normalises_its_own_shard() {
    // As DistributedDataParallel without SyncBatchNorm: the training follows `--devices` with
    // two devices in one process (each shard normalised by its own statistics), while the
    // running statistics are rank 0's own (--devices averages the workers' updates).
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "tiny.arch", TINY);
    let (rd, r2, r1) = (
        dir.path().join("devices"),
        dir.path().join("two"),
        dir.path().join("one"),
    );
    let mut devices = train_args(&f, "tiny", &rd, 8);
    let at = devices.iter().position(|a| a == "--device").unwrap();
    devices.splice(
        at..at + 2,
        ["--devices", "libtorch-cpu,libtorch-cpu"].map(String::from),
    );
    one(&devices);
    two(&train_args(&f, "tiny", &r2, 8));
    one(&train_args(&f, "tiny", &r1, 8));
    let train_losses =
        |run: &Path| -> Vec<f64> { rows(run).iter().filter_map(|r| r["train_loss"]).collect() };
    let (ld, l2, l1) = (train_losses(&rd), train_losses(&r2), train_losses(&r1));
    assert_eq!(ld.len(), 4);
    for (a, b) in ld.iter().zip(&l2) {
        assert!(
            close(*a, *b, 1e-5),
            "training loss {a} (--devices) against {b}"
        );
    }
    // Not what one process computes: its batch norm sees the whole batch.
    assert!(!close(l1[0], l2[0], 1e-5), "{} against {}", l1[0], l2[0]);
    same_weights(&rd, &r2, 1e-5, true);
    let (wd, w2) = (weights(&rd), weights(&r2));
    let running = wd.keys().filter(|k| is_running_stat(k)).count();
    assert!(running > 0);
    for k in wd.keys().filter(|k| is_running_stat(k)) {
        assert!(
            difference(&wd[k], &w2[k]) > 1e-4,
            "{k}: rank 0's statistics"
        );
    }
}

#[test]
fn a_two_process_run_resumes_as_one_never_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "nobn.arch", NO_BN);
    let (r1, r2) = (dir.path().join("one"), dir.path().join("two"));
    one(&train_args(&f, "nobn", &r1, 8));
    two(&train_args(&f, "nobn", &r2, 4));
    let mut again = train_args(&f, "nobn", &r2, 8);
    again.push("--resume".into());
    let o = two(&again);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("resuming at iteration 4"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    same_rows(&r1, &r2, 1e-5);
    same_weights(&r1, &r2, 1e-5, false);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Rank `rank` of two, started as a launcher would start it: torchrun's variables, or with
/// `slurm` Slurm's (`srun` with MASTER_ADDR and MASTER_PORT exported).
fn rank(rank: usize, port: u16, slurm: bool, args: &[String]) -> Command {
    let mut c = Command::new(archc());
    c.args(args)
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if slurm {
        c.env("SLURM_PROCID", rank.to_string())
            .env("SLURM_NTASKS", "2")
            .env("SLURM_LOCALID", rank.to_string());
    } else {
        c.env("RANK", rank.to_string())
            .env("WORLD_SIZE", "2")
            .env("LOCAL_RANK", rank.to_string());
    }
    c
}

/// The extra seconds a process may take past --dist-timeout to stop: its start and the data
/// opened before it joins (slow on a busy 2-core machine), and the store's client, which
/// retries once after a delay of up to the timeout. A hang would never end.
const MARGIN: f64 = 30.0;

#[test]
fn a_killed_peer_ends_the_other_process_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "nobn.arch", NO_BN);
    let out = dir.path().join("run");
    let mut args = train_args(&f, "nobn", &out, 100_000);
    args.extend(["--dist-timeout", "20"].map(String::from));
    // Rank 0 as srun starts it, rank 1 as torchrun does: one rendezvous either way.
    let port = free_port();
    let r0 = rank(0, port, true, &args).spawn().unwrap();
    let mut r1 = rank(1, port, false, &args).spawn().unwrap();
    training(&out);
    r1.kill().unwrap();
    r1.wait().unwrap();
    let killed = Instant::now();
    let o = r0.wait_with_output().unwrap();
    let took = killed.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        took < 20.0 + MARGIN,
        "rank 0 stopped {took} s after the kill"
    );
    assert!(
        err.contains("distributed training: rank 0 of 2: the all-reduce of the gradients failed")
            && err.contains("a peer process ended, failed or stopped answering"),
        "{err}"
    );
}

/// Wait until rank 0 has written a metric row: both processes are training.
fn training(out: &Path) {
    let start = Instant::now();
    while !out.join("metrics.csv").exists() {
        assert!(start.elapsed() < Duration::from_secs(120), "no metric row");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_interrupt_of_one_process_stops_every_process_at_the_same_step() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "nobn.arch", NO_BN);
    let out = dir.path().join("run");
    let args = train_args(&f, "nobn", &out, 100_000);
    let port = free_port();
    let r0 = rank(0, port, false, &args).spawn().unwrap();
    let r1 = rank(1, port, false, &args).spawn().unwrap();
    training(&out);
    // SIGTERM (as Ctrl-C) to rank 1 only.
    let status = Command::new("kill")
        .args(["-TERM", &r1.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (o0, o1) = (
        r0.wait_with_output().unwrap(),
        r1.wait_with_output().unwrap(),
    );
    let err = String::from_utf8_lossy(&o0.stderr);
    assert_eq!(o0.status.code(), Some(130), "{err}");
    assert_eq!(
        o1.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o1.stderr)
    );
    // Rank 0 saved `last` at the step where both stopped, and said so.
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("checkpoints/last/state.json")).unwrap(),
    )
    .unwrap();
    let it = state["iteration"].as_u64().unwrap();
    assert!(
        err.contains(&format!("interrupted at iteration {it}: saved")),
        "{err}"
    );
}

#[test]
fn a_peer_that_never_comes_ends_the_others_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "nobn.arch", NO_BN);
    let out = dir.path().join("run");
    let mut args = train_args(&f, "nobn", &out, 10);
    args.extend(["--dist-timeout", "5"].map(String::from));
    // Rank 0 hosts the store and waits for rank 1; rank 1 (of another launch) finds no store.
    for (r, slurm) in [(0, true), (1, false)] {
        let start = Instant::now();
        let o = rank(r, free_port(), slurm, &args).output().unwrap();
        let took = start.elapsed().as_secs_f64();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(took < 5.0 + MARGIN, "rank {r} stopped after {took} s");
        assert!(
            err.contains(&format!(
                "distributed training: rank {r} of 2: joining the process group at 127.0.0.1:"
            )),
            "{err}"
        );
        // Nothing was written.
        assert!(!out.exists());
    }
}

#[test]
fn gpus_under_a_launcher_and_uneven_batches_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "nobn.arch", NO_BN);
    let out = dir.path().join("run");
    let mut args = train_args(&f, "nobn", &out, 10);
    let at = args.iter().position(|a| a == "libtorch-cpu").unwrap();
    args[at] = "cuda:0".into();
    let o = rank(1, free_port(), false, &args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("needs c10d's NCCL backend"), "{err}");
    // A batch of 15 does not split over two processes: both say so, nothing is written.
    let mut args = train_args(&f, "nobn", &out, 10);
    let at = args.iter().position(|a| a == "16").unwrap();
    args[at] = "15".into();
    let port = free_port();
    let r0 = rank(0, port, false, &args).spawn().unwrap();
    let r1 = rank(1, port, false, &args).spawn().unwrap();
    for p in [r0, r1] {
        let o = p.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains("the batch size 15 is not a multiple of the 2 processes"),
            "{err}"
        );
    }
    assert!(!out.exists());
}
