//! Generate the Rust types of ONNX's own schema (`proto/onnx.proto`, vendored from onnx 1.23.2)
//! with protobuf-codegen's pure-Rust parser, into `OUT_DIR` (nothing generated is committed).

fn main() {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    protobuf_codegen::Codegen::new()
        .pure()
        .include("proto")
        .input("proto/onnx.proto")
        .cargo_out_dir("proto")
        .run_from_script();
}
