//! ONNX's protobuf messages (`ModelProto`, `GraphProto`, `NodeProto`, `TensorProto`, …), generated
//! at build time from ONNX's own `onnx.proto` (onnx 1.23.2, vendored in `proto/` with its
//! licence) by `protobuf-codegen`. archc's exporter is `archc_runtime::onnx`; this crate only
//! holds the schema, so that the generated code is compiled once and apart.

include!(concat!(env!("OUT_DIR"), "/proto/mod.rs"));

pub use protobuf::{Enum, EnumOrUnknown, Message, MessageField};
