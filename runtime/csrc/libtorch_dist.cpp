// A c10d process group for archc's distributed training (cargo feature `tch`; src/train/dist.rs).
//
// PyTorch's own engine: a TCPStore for the rendezvous (the one torchrun's agent hosts, or one
// that rank 0 hosts) and ProcessGroupGloo for the collectives, as
// `torch.distributed.init_process_group("gloo", init_method="env://")` makes them. The
// collectives run on host buffers of f32 (`data`, `n` values), wrapped as CPU tensors without a
// copy. Every function returns null on success or, on a C++ exception, its message (the caller
// frees it with `archc_fused_free`, libtorch_fused.cpp): no exception crosses into Rust.
//
// Gloo's own headers are not in PyTorch's wheels: `gloo_decl/` declares the few names that
// ProcessGroupGloo.hpp mentions (see gloo_decl/README.md).

#define USE_C10D_GLOO 1

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <ATen/ATen.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "archc_message.h"

namespace {

using archc::message;

struct Group {
    c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
};

at::Tensor wrap(float *data, int64_t n) {
    return at::from_blob(data, {n}, at::TensorOptions().dtype(at::kFloat));
}

template <typename F>
char *guarded(F f) {
    try {
        f();
        return nullptr;
    } catch (const std::exception &e) {
        return message(e.what());
    } catch (...) {
        return message("unknown C++ exception");
    }
}

}  // namespace

extern "C" {

// Join the group: connect to (or, with `is_server`, host) the TCPStore at host:port, under the
// key prefix `prefix`, and connect to every peer through Gloo on the network interface `iface`
// (empty: the address this host's name resolves to, else the loopback address, as PyTorch's
// default). `timeout_ms` bounds the store's connection, the rendezvous and every collective.
char *archc_dist_new(const char *host, int port, int rank, int world, int is_server,
                     const char *prefix, int64_t timeout_ms, const char *iface, void **out) {
    *out = nullptr;
    return guarded([&] {
        std::chrono::milliseconds timeout(timeout_ms);
        c10d::TCPStoreOptions opts;
        opts.port = static_cast<std::uint16_t>(port);
        opts.isServer = is_server != 0;
        opts.numWorkers = static_cast<std::size_t>(world);
        opts.waitWorkers = false;
        opts.timeout = timeout;
        auto tcp = c10::make_intrusive<c10d::TCPStore>(std::string(host), opts);
        auto store = c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), tcp);
        auto options = c10d::ProcessGroupGloo::Options::create(timeout);
        std::string interface(iface);
        options->devices.push_back(interface.empty()
                                       ? c10d::ProcessGroupGloo::createDefaultDevice()
                                       : c10d::ProcessGroupGloo::createDeviceForInterface(interface));
        auto *group = new Group{c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, options)};
        *out = group;
    });
}

// Sum `data` over every rank, in place.
char *archc_dist_all_reduce(void *group, float *data, int64_t n) {
    return guarded([&] {
        std::vector<at::Tensor> tensors = {wrap(data, n)};
        static_cast<Group *>(group)->pg->allreduce(tensors)->wait();
    });
}

// Rank `root`'s `data` into every rank's, in place.
char *archc_dist_broadcast(void *group, float *data, int64_t n, int root) {
    return guarded([&] {
        std::vector<at::Tensor> tensors = {wrap(data, n)};
        c10d::BroadcastOptions opts;
        opts.rootRank = root;
        static_cast<Group *>(group)->pg->broadcast(tensors, opts)->wait();
    });
}

// Leave the group.
void archc_dist_free(void *group) {
    try {
        delete static_cast<Group *>(group);
    } catch (...) {
    }
}

}  // extern "C"
