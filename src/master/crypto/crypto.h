// Tempo's MM-obfuscation library (PROTOCOL.md sections 2-4 and the key-space metric of 6).
// Trusted side only: nothing in src/worker/ may include this.
//
// Roles, one class per file, in the spirit of Microsoft SEAL:
//   ObfuscationParams        sigma, scale distribution, signed inner scale
//   Csprng                   libsodium randombytes; unbiased Fisher-Yates
//   KeyGenerator             fresh DimKey / MatmulKey / BatchedMatmulKey / ConvChannelKey /
//                            PatchConvKey
//   *Encryptor, *Decryptor   per operation kind: Matmul, BatchedMatmul, ConvChannel, PatchConv;
//                            Tensor + key -> BlindedTensor and back, including the shifted keys
//                            of the backward pass (section 4)
//   *Obfuscator / *Forward   one-call API for the offload engine: encrypt both operands under a
//                            fresh key, keep the key state, decrypt results and handle backward
//   KeySpace                 bits of key entropy per offloaded tensor, per operation
//
// Conventions (see DimKey): blinded position i holds plaintext index perm[i] times scale[i].
// Usage (see docs/notes/crypto-api.md):
//   1. crypto::MatmulObfuscator obf(params);
//   2. crypto::MatmulForward fw = obf.encrypt(x, w);          // X', W' under a fresh key
//   3. worker: Y' = fw.x() · fw.w()                           // caches X', W'
//   4. Tensor y = fw.decrypt(y_blinded);
//   5. worker: dX' = fw.encrypt_grad_for_dx(dy) · W'^T;  Tensor dx = fw.decrypt_dx(dx_blinded);
//   6. worker: dW' = X'^T · fw.encrypt_grad_for_dw(dy);  Tensor dw = fw.decrypt_dw(dw_blinded);
#pragma once

#include "master/crypto/batched_matmul_decryptor.h"
#include "master/crypto/batched_matmul_encryptor.h"
#include "master/crypto/batched_matmul_obfuscator.h"
#include "master/crypto/conv_channel_decryptor.h"
#include "master/crypto/conv_channel_encryptor.h"
#include "master/crypto/conv_channel_obfuscator.h"
#include "master/crypto/conv_shape.h"
#include "master/crypto/csprng.h"
#include "master/crypto/dim_key.h"
#include "master/crypto/key_generator.h"
#include "master/crypto/key_space.h"
#include "master/crypto/keys.h"
#include "master/crypto/matmul_decryptor.h"
#include "master/crypto/matmul_encryptor.h"
#include "master/crypto/matmul_obfuscator.h"
#include "master/crypto/obfuscation_params.h"
#include "master/crypto/patch_conv_decryptor.h"
#include "master/crypto/patch_conv_encryptor.h"
#include "master/crypto/patch_conv_obfuscator.h"
