//! The runtime halves of op units: for a lowered op kind, its forward on Burn tensors and the
//! Burn API text `archc codegen` writes for it. (The older kinds still live in
//! `network.rs`; see ARCHITECTURE.md.)

pub mod activation;
pub mod norm;
pub mod shape_ops;
