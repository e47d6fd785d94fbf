//! With the cargo feature `tch`: compile `csrc/libtorch_fused.cpp` (LibTorch's backward kernels
//! for the fused batch norm and convolution, src/fused.rs) against the LibTorch that torch-sys
//! found. Without it: nothing.

fn main() {
    #[cfg(feature = "tch")]
    libtorch::compile();
}

#[cfg(feature = "tch")]
mod libtorch {
    use std::path::PathBuf;

    pub fn compile() {
        let source = "csrc/libtorch_fused.cpp";
        println!("cargo:rerun-if-changed={source}");
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
        cc::Build::new()
            .cpp(true)
            .pic(true)
            .warnings(false)
            .include(&include)
            .include(include.join("torch/csrc/api/include"))
            .flag("-std=c++17")
            .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
            .file(source)
            .compile("archc_libtorch_fused");
        // The wrappers call into libtorch_cpu and libc10 (torch-sys links them too; naming them
        // here keeps the order right for the linker).
        println!("cargo:rustc-link-search=native={}", lib.display());
        println!("cargo:rustc-link-lib=torch_cpu");
        println!("cargo:rustc-link-lib=c10");
    }
}
