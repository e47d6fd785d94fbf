// LibTorch's own backward kernels for archc's fused operations (cargo feature `tch`).
//
// tch 0.22 binds the forward ops (`native_batch_norm`, `conv2d`) but none of ATen's `*_backward`
// functions, so these two wrappers call them directly. Tensors cross as `at::Tensor *`, the
// representation tch uses for `C_tensor` (libtch/torch_api.h: `typedef torch::Tensor *tensor`):
// inputs are borrowed; each defined result is returned as a new `at::Tensor *` that the caller
// owns (tch's `Tensor::from_ptr`, freed by its `Drop`), an undefined one as null. On a C++
// exception the functions return its message (free it with `archc_fused_free`), else null.

#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <tuple>

#include "archc_message.h"

namespace {

using archc::message;

void put(at::Tensor *out[3], std::tuple<at::Tensor, at::Tensor, at::Tensor> r) {
    at::Tensor parts[3] = {std::get<0>(r), std::get<1>(r), std::get<2>(r)};
    for (int i = 0; i < 3; ++i) {
        out[i] = parts[i].defined() ? new at::Tensor(parts[i]) : nullptr;
    }
}

}  // namespace

extern "C" {

void archc_fused_free(char *message) { std::free(message); }

// at::native_batch_norm_backward in training mode, as PyTorch's autograd calls it for
// `native_batch_norm(input, weight, bias, running_mean, running_var, training=true, ...)`:
// `save_mean` and `save_invstd` are the forward's second and third results.
char *archc_batch_norm_backward(const at::Tensor *grad_out, const at::Tensor *input,
                                const at::Tensor *weight, const at::Tensor *save_mean,
                                const at::Tensor *save_invstd, double eps, int mask_input,
                                int mask_weight, int mask_bias, at::Tensor *out[3]) {
    try {
        std::optional<at::Tensor> w;
        if (weight != nullptr) {
            w = *weight;
        }
        std::array<bool, 3> mask = {mask_input != 0, mask_weight != 0, mask_bias != 0};
        put(out, at::native_batch_norm_backward(*grad_out, *input, w, std::nullopt, std::nullopt,
                                                *save_mean, *save_invstd, true, eps, mask));
        return nullptr;
    } catch (const std::exception &e) {
        return message(e.what());
    }
}

// at::convolution_backward of a 2-d (not transposed) convolution, as PyTorch's autograd calls it
// for `convolution(input, weight, bias, stride, padding, dilation, false, [0, 0], groups)`;
// `bias_len` is the bias's length, or negative when there is no bias.
char *archc_conv2d_backward(const at::Tensor *grad_out, const at::Tensor *input,
                            const at::Tensor *weight, int64_t bias_len, const int64_t *stride,
                            const int64_t *padding, const int64_t *dilation, int64_t groups,
                            int mask_input, int mask_weight, int mask_bias, at::Tensor *out[3]) {
    try {
        at::OptionalIntArrayRef bias_sizes = std::nullopt;
        if (bias_len >= 0) {
            bias_sizes = at::IntArrayRef(&bias_len, 1);
        }
        const int64_t output_padding[2] = {0, 0};
        std::array<bool, 3> mask = {mask_input != 0, mask_weight != 0, mask_bias != 0};
        put(out, at::convolution_backward(*grad_out, *input, *weight, bias_sizes,
                                          at::IntArrayRef(stride, 2), at::IntArrayRef(padding, 2),
                                          at::IntArrayRef(dilation, 2), false,
                                          at::IntArrayRef(output_padding, 2), groups, mask));
        return nullptr;
    } catch (const std::exception &e) {
        return message(e.what());
    }
}

}  // extern "C"
