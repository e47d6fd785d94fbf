//! With the cargo feature `tch`: compile `csrc/libtorch_fused.cpp` (LibTorch's backward kernels
//! for the fused batch norm and convolution, src/fused.rs) and `csrc/libtorch_dist.cpp` (a c10d
//! process group for distributed training, src/train/dist.rs) against the LibTorch that
//! torch-sys found. Without it: nothing.

fn main() {
    #[cfg(feature = "tch")]
    libtorch::compile();
}

#[cfg(feature = "tch")]
mod libtorch {
    use std::path::PathBuf;

    pub fn compile() {
        let source = "csrc/libtorch_fused.cpp";
        let dist = "csrc/libtorch_dist.cpp";
        println!("cargo:rerun-if-changed={source}");
        println!("cargo:rerun-if-changed={dist}");
        println!("cargo:rerun-if-changed=csrc/gloo_decl");
        println!("cargo:rerun-if-changed=csrc/archc_message.h");
        println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
        // torch-sys (`links = "tch"`) tells its dependents where LibTorch's libraries are; the
        // headers are beside them (`<libtorch>/lib`, `<libtorch>/include`, also in a PyTorch
        // install: `torch/lib`, `torch/include`).
        let lib = PathBuf::from(
            std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys reports DEP_TCH_LIBTORCH_LIB"),
        );
        let include = lib
            .parent()
            .expect("the LibTorch lib folder has a parent")
            .join("include");
        // PyTorch's wheels since 2.7 and LibTorch's cxx11 builds use the C++11 ABI (torch-sys's
        // own default too); LIBTORCH_CXX11_ABI=0 for a pre-cxx11 LibTorch, as for torch-sys.
        let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
        let build = |name: &str, file: &str, extra: Option<&str>| {
            let mut b = cc::Build::new();
            b.cpp(true)
                .pic(true)
                .warnings(false)
                .include(&include)
                .include(include.join("torch/csrc/api/include"))
                .flag("-std=c++17")
                .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
                .file(file);
            if let Some(dir) = extra {
                b.include(dir);
            }
            b.compile(name);
        };
        build("archc_libtorch_fused", source, None);
        // PyTorch's wheels lack Gloo's headers, which c10d's ProcessGroupGloo.hpp includes:
        // csrc/gloo_decl declares the names it mentions (csrc/gloo_decl/README.md).
        build("archc_libtorch_dist", dist, Some("csrc/gloo_decl"));
        // The wrappers call into libtorch_cpu and libc10 (torch-sys links them too; naming them
        // here keeps the order right for the linker).
        println!("cargo:rustc-link-search=native={}", lib.display());
        println!("cargo:rustc-link-lib=torch_cpu");
        println!("cargo:rustc-link-lib=c10");
    }
}
