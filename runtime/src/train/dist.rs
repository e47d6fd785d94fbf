//! Training over several processes, on PyTorch's distributed engine (c10d): one process per
//! device, launched by `torchrun --no-python archc train ...` or Slurm's `srun`.
//!
//! Contract:
//! - [`Launch::from_env`] reads the launcher's variables: `RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
//!   `MASTER_ADDR`, `MASTER_PORT` (torchrun and any `env://` launcher), else Slurm's
//!   `SLURM_PROCID`, `SLURM_NTASKS`, `SLURM_LOCALID` with `MASTER_ADDR` / `MASTER_PORT` exported
//!   by the job script. A world of one is an ordinary run;
//! - [`Group::join`] joins the process group as `init_process_group("gloo", "env://")` does: the
//!   TCPStore of torchrun's agent (`TORCHELASTIC_USE_AGENT_STORE=True`: every rank is a
//!   client), else one that rank 0 hosts, then Gloo's full mesh (`csrc/libtorch_dist.cpp`);
//!   every connection, the rendezvous and every collective are bounded by one timeout
//!   (`--dist-timeout`), so a peer that never arrives or stops answering ends the others with
//!   an error, and one that dies ends them at their next collective (its sockets close);
//! - the collectives run on host copies of f32 values, whatever the device: [`broadcast_model`]
//!   gives every rank rank 0's parameters and buffers, [`all_reduce_grads`] sums the
//!   gradients (each rank's loss is its shard's mean times `shard / batch`, so the sum is the
//!   whole batch's mean gradient, as DistributedDataParallel's average) together with a few
//!   values of the step (the loss, the mistakes, a stop flag) in one buffer;
//! - only the LibTorch build (`tch`) has the engine; without it a launch of several processes
//!   is an error saying so. NCCL (`cuda:N`) is not built: see docs/training.md.

use std::time::Duration;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};

use super::TrainError;
use crate::Network;

/// The default of `--dist-timeout`: PyTorch's default process-group timeout (30 minutes).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// Where this process stands among its peers, as the launcher said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub rank: usize,
    pub world: usize,
    pub local_rank: usize,
    pub master_addr: String,
    pub master_port: u16,
    /// torchrun's agent hosts the store: every rank connects as a client.
    pub agent_store: bool,
    /// The store's key prefix (per torchrun restart, as PyTorch's own).
    pub prefix: String,
    /// `torchrun` (any `env://` launcher) or `srun`.
    pub launcher: &'static str,
}

impl Launch {
    /// The launch described by the environment, or `None` for one process.
    pub fn from_env() -> Result<Option<Launch>, String> {
        Launch::from_vars(|k| std::env::var(k).ok())
    }

    /// [`Launch::from_env`] on the variables `get` gives.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Option<Launch>, String> {
        let number = |name: &str| -> Result<Option<usize>, String> {
            get(name)
                .map(|v| {
                    v.trim()
                        .parse::<usize>()
                        .map_err(|_| format!("{name}={v} is not a whole number"))
                })
                .transpose()
        };
        let (rank, world, local_rank, launcher) = if let Some(world) = number("WORLD_SIZE")? {
            let rank = number("RANK")?.ok_or("WORLD_SIZE is set but RANK is not")?;
            (rank, world, number("LOCAL_RANK")?.unwrap_or(0), "torchrun")
        } else if let (Some(world), Some(rank)) = (number("SLURM_NTASKS")?, number("SLURM_PROCID")?)
        {
            if world > 1 && get("MASTER_ADDR").is_none() {
                // Task 0 of an allocation may well be a plain run inside a batch script; any
                // other task was started by srun next to others, which must not write the
                // same run folder on their own.
                if rank == 0 {
                    return Ok(None);
                }
                return Err(format!(
                    "started by srun as task {rank} of {world}, but MASTER_ADDR and MASTER_PORT \
                     are not set: export them in the job script (docs/training.md)"
                ));
            }
            (rank, world, number("SLURM_LOCALID")?.unwrap_or(0), "srun")
        } else {
            return Ok(None);
        };
        if world == 0 || rank >= world {
            return Err(format!(
                "rank {rank} does not fit a world of {world} processes"
            ));
        }
        if world == 1 {
            return Ok(None);
        }
        let master_addr = get("MASTER_ADDR")
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                format!("{launcher} launched {world} processes but MASTER_ADDR is not set")
            })?;
        let port = get("MASTER_PORT").ok_or_else(|| {
            format!("{launcher} launched {world} processes but MASTER_PORT is not set")
        })?;
        let master_port = port
            .trim()
            .parse::<u16>()
            .map_err(|_| format!("MASTER_PORT={port} is not a port number"))?;
        let agent_store = get("TORCHELASTIC_USE_AGENT_STORE").as_deref() == Some("True");
        let attempt = get("TORCHELASTIC_RESTART_COUNT").unwrap_or_else(|| "0".to_string());
        Ok(Some(Launch {
            rank,
            world,
            local_rank,
            master_addr,
            master_port,
            agent_store,
            prefix: format!("archc/attempt_{attempt}/"),
            launcher,
        }))
    }
}

/// A joined process group (Gloo). Leaves the group when dropped.
pub struct Group {
    #[cfg(feature = "tch")]
    raw: *mut std::ffi::c_void,
    pub rank: usize,
    pub world: usize,
    pub timeout: Duration,
}

#[cfg(feature = "tch")]
mod ffi {
    use std::ffi::{c_char, c_int, c_void};
    extern "C" {
        pub fn archc_fused_free(message: *mut c_char);
        #[allow(clippy::too_many_arguments)]
        pub fn archc_dist_new(
            host: *const c_char,
            port: c_int,
            rank: c_int,
            world: c_int,
            is_server: c_int,
            prefix: *const c_char,
            timeout_ms: i64,
            iface: *const c_char,
            out: *mut *mut c_void,
        ) -> *mut c_char;
        pub fn archc_dist_all_reduce(group: *mut c_void, data: *mut f32, n: i64) -> *mut c_char;
        pub fn archc_dist_broadcast(
            group: *mut c_void,
            data: *mut f32,
            n: i64,
            root: c_int,
        ) -> *mut c_char;
        pub fn archc_dist_free(group: *mut c_void);
    }

    /// The message of a failed call (freed here), or `Ok`.
    pub fn check(m: *mut c_char) -> Result<(), String> {
        if m.is_null() {
            return Ok(());
        }
        // SAFETY: a non-null result is a NUL-terminated string from malloc, ours to free.
        let s = unsafe { std::ffi::CStr::from_ptr(m) }
            .to_string_lossy()
            .into_owned();
        unsafe { archc_fused_free(m) };
        Err(s)
    }
}

#[cfg(feature = "tch")]
impl Group {
    /// Join the group of `launch` (see the module docs); `timeout` bounds every wait.
    pub fn join(launch: &Launch, timeout: Duration) -> Result<Group, String> {
        use std::ffi::CString;
        let c = |s: &str| CString::new(s).map_err(|_| format!("`{s}` holds a NUL byte"));
        let host = c(&launch.master_addr)?;
        let prefix = c(&launch.prefix)?;
        // Gloo's interface, as PyTorch reads it (the first of a list).
        let iface = std::env::var("GLOO_SOCKET_IFNAME").unwrap_or_default();
        let iface = c(iface.split(',').next().unwrap_or(""))?;
        let mut raw = std::ptr::null_mut();
        // SAFETY: the strings outlive the call; `raw` is written by it.
        ffi::check(unsafe {
            ffi::archc_dist_new(
                host.as_ptr(),
                launch.master_port.into(),
                launch.rank as i32,
                launch.world as i32,
                i32::from(!launch.agent_store && launch.rank == 0),
                prefix.as_ptr(),
                timeout.as_millis().min(i64::MAX as u128) as i64,
                iface.as_ptr(),
                &mut raw,
            )
        })?;
        Ok(Group {
            raw,
            rank: launch.rank,
            world: launch.world,
            timeout,
        })
    }

    /// Sum `data` over every rank, in place (every rank gets the same values).
    pub fn all_reduce_sum(&self, data: &mut [f32]) -> Result<(), String> {
        // SAFETY: the buffer is valid for `len` values for the call's duration.
        ffi::check(unsafe {
            ffi::archc_dist_all_reduce(self.raw, data.as_mut_ptr(), data.len() as i64)
        })
    }

    /// Rank `root`'s `data` into every rank's, in place.
    pub fn broadcast(&self, data: &mut [f32], root: usize) -> Result<(), String> {
        // SAFETY: as for all_reduce_sum.
        ffi::check(unsafe {
            ffi::archc_dist_broadcast(self.raw, data.as_mut_ptr(), data.len() as i64, root as i32)
        })
    }
}

#[cfg(feature = "tch")]
impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: made by archc_dist_new, freed once.
        unsafe { ffi::archc_dist_free(self.raw) }
    }
}

#[cfg(not(feature = "tch"))]
impl Group {
    /// Without LibTorch there is no engine: an error saying so.
    pub fn join(launch: &Launch, _timeout: Duration) -> Result<Group, String> {
        Err(format!(
            "{} launched {} processes, but this archc was built without the LibTorch backend, \
             whose distributed engine (c10d) they need: rebuild with `--features tch`",
            launch.launcher, launch.world
        ))
    }

    pub fn all_reduce_sum(&self, _data: &mut [f32]) -> Result<(), String> {
        unreachable!("no group is made without the tch feature")
    }

    pub fn broadcast(&self, _data: &mut [f32], _root: usize) -> Result<(), String> {
        unreachable!("no group is made without the tch feature")
    }
}

impl Group {
    /// A failed collective as the run's error: which rank, what, and what it means.
    pub(crate) fn error(&self, what: &str, e: String) -> TrainError {
        TrainError::Distributed(format!(
            "rank {} of {}: {what} failed: {}; a peer process ended, failed or stopped \
             answering (--dist-timeout {} s); every process stops, continue with --resume",
            self.rank,
            self.world,
            e.lines().next().unwrap_or(""),
            self.timeout.as_secs()
        ))
    }
}

/// Every float tensor of the model (parameters and buffers), in visiting order, as f32.
struct Gather {
    values: Vec<f32>,
    failed: Option<TrainError>,
}

impl ModuleVisitor for Gather {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.failed.is_some() {
            return;
        }
        match super::to_vec_f32(param.val()) {
            Ok(v) => self.values.extend(v),
            Err(e) => self.failed = Some(e),
        }
    }
}

/// The model's float tensors replaced, in visiting order, by `values`.
struct Scatter<'a> {
    values: &'a [f32],
    at: usize,
}

impl ModuleMapper for Scatter<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let require_grad = tensor.is_require_grad();
        let inner = tensor.inner();
        let shape: [usize; D] = inner.dims();
        let n = shape.iter().product::<usize>();
        let data = TensorData::new(self.values[self.at..self.at + n].to_vec(), shape);
        self.at += n;
        let mut t = Tensor::from_inner(Tensor::<D>::from_data(data, &inner.device()));
        if require_grad {
            t = t.require_grad();
        }
        Param::from_mapped_value(id, t, mapper)
    }
}

/// Rank 0's parameters and buffers on every rank (the initial weights; `--init` and
/// `--resume` load on rank 0, or on every rank, and this makes them equal).
pub(crate) fn broadcast_model(group: &Group, model: Network) -> Result<Network, TrainError> {
    let mut g = Gather {
        values: Vec::new(),
        failed: None,
    };
    model.visit(&mut g);
    if let Some(e) = g.failed {
        return Err(e);
    }
    let mut values = g.values;
    group
        .broadcast(&mut values, 0)
        .map_err(|e| group.error("the broadcast of rank 0's weights", e))?;
    Ok(model.map(&mut Scatter {
        values: &values,
        at: 0,
    }))
}

/// The gradients that `grads` holds, in the model's visiting order.
struct GatherGrads<'a> {
    grads: &'a GradientsParams,
    values: Vec<f32>,
    ids: Vec<ParamId>,
    failed: Option<TrainError>,
}

impl ModuleVisitor for GatherGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.failed.is_some() {
            return;
        }
        if let Some(g) = self.grads.get::<D>(param.id) {
            match super::to_vec_f32(g) {
                Ok(v) => {
                    self.values.extend(v);
                    self.ids.push(param.id);
                }
                Err(e) => self.failed = Some(e),
            }
        }
    }
}

/// The gradients replaced by `values`, in the same order.
struct ScatterGrads<'a> {
    grads: &'a mut GradientsParams,
    values: &'a [f32],
    at: usize,
}

impl ModuleVisitor for ScatterGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            let shape: [usize; D] = g.dims();
            let n = shape.iter().product::<usize>();
            let data = TensorData::new(self.values[self.at..self.at + n].to_vec(), shape);
            self.at += n;
            self.grads
                .register::<D>(param.id, Tensor::<D>::from_data(data, &g.device()));
        }
    }
}

/// Sum the gradients over every rank, and `extra` (the step's own values) with them: one
/// all-reduce of one buffer. Every rank must hold gradients for the same parameters (the same
/// network, the same frozen layers).
pub(crate) fn all_reduce_grads(
    group: &Group,
    model: &Network,
    grads: &mut GradientsParams,
    extra: &mut [f32],
) -> Result<(), TrainError> {
    let mut g = GatherGrads {
        grads,
        values: Vec::new(),
        ids: Vec::new(),
        failed: None,
    };
    model.visit(&mut g);
    if let Some(e) = g.failed {
        return Err(e);
    }
    let mut values = g.values;
    let n = values.len();
    values.extend_from_slice(extra);
    group
        .all_reduce_sum(&mut values)
        .map_err(|e| group.error("the all-reduce of the gradients", e))?;
    extra.copy_from_slice(&values[n..]);
    model.visit(&mut ScatterGrads {
        grads,
        values: &values[..n],
        at: 0,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn launch(vars: &[(&str, &str)]) -> Result<Option<Launch>, String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Launch::from_vars(|k| map.get(k).cloned())
    }

    #[test]
    fn launchers_are_read_from_their_variables() {
        assert_eq!(launch(&[]), Ok(None));
        let torchrun = [
            ("RANK", "1"),
            ("WORLD_SIZE", "2"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "127.0.0.1"),
            ("MASTER_PORT", "29500"),
            ("TORCHELASTIC_USE_AGENT_STORE", "True"),
            ("TORCHELASTIC_RESTART_COUNT", "3"),
        ];
        let l = launch(&torchrun).unwrap().expect("a launch");
        assert_eq!((l.rank, l.world, l.local_rank), (1, 2, 1));
        assert_eq!((l.master_port, l.agent_store), (29500, true));
        assert_eq!(
            (l.prefix.as_str(), l.launcher),
            ("archc/attempt_3/", "torchrun")
        );
        // One process is an ordinary run.
        assert_eq!(launch(&[("RANK", "0"), ("WORLD_SIZE", "1")]), Ok(None));
        let slurm = [
            ("SLURM_PROCID", "3"),
            ("SLURM_NTASKS", "4"),
            ("SLURM_LOCALID", "1"),
            ("MASTER_ADDR", "node1"),
            ("MASTER_PORT", "29400"),
        ];
        let l = launch(&slurm).unwrap().expect("a launch");
        assert_eq!(
            (l.rank, l.world, l.local_rank, l.launcher),
            (3, 4, 1, "srun")
        );
        assert!(!l.agent_store);
        // Task 0 of an allocation without MASTER_ADDR: a plain run; another task: an error.
        assert_eq!(
            launch(&[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "4")]),
            Ok(None)
        );
        let e = launch(&[("SLURM_PROCID", "2"), ("SLURM_NTASKS", "4")]).unwrap_err();
        assert!(e.contains("MASTER_ADDR and MASTER_PORT are not set"), "{e}");
        for (vars, says) in [
            (&[("RANK", "2"), ("WORLD_SIZE", "2")][..], "does not fit"),
            (&[("RANK", "x"), ("WORLD_SIZE", "2")][..], "RANK=x"),
            (&[("WORLD_SIZE", "2")][..], "RANK is not"),
            (
                &[("RANK", "0"), ("WORLD_SIZE", "2")][..],
                "MASTER_ADDR is not set",
            ),
            (
                &[
                    ("RANK", "0"),
                    ("WORLD_SIZE", "2"),
                    ("MASTER_ADDR", "h"),
                    ("MASTER_PORT", "99999"),
                ][..],
                "not a port",
            ),
        ] {
            let e = launch(vars).unwrap_err();
            assert!(e.contains(says), "{vars:?}: {e}");
        }
    }
}
