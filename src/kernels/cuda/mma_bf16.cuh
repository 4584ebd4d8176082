// The warp-level tensor-core pieces the attention kernels share: one
// mma.m16n8k16 (bf16 in, fp32 accumulate) and ldmatrix of K and V tiles.
//
// Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16"), with
// grp = lane / 4 and quad = lane % 4:
//   A (16 x 16, row-major), four registers of two bf16: a0 = row grp,
//     columns quad * 2 + {0, 1}; a1 = row grp + 8, same columns; a2 = row
//     grp, columns 8 + quad * 2 + {0, 1}; a3 = row grp + 8, those columns.
//   B (16 x 8, column-major), two registers: b0 = rows quad * 2 + {0, 1}
//     of column grp; b1 = rows 8 + quad * 2 + {0, 1}.
//   C/D (16 x 8, fp32): c0, c1 = row grp, columns quad * 2 + {0, 1};
//     c2, c3 = row grp + 8.
// C of two adjacent n-tiles is therefore the A layout of one k-step: the
// attention kernels feed their softmaxed scores straight back as P.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace llmctl::kernels::cuda {

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// d += a (16 x 16) x b (16 x 8).
__device__ __forceinline__ void mma_16816(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                          uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Four 8 x 8 bf16 matrices from shared memory, as stored: lane l gives the
// address of row l % 8 of matrix l / 8 and receives row l / 4, columns
// (l % 4) * 2 + {0, 1} of each. With a row-major [key][dim] K tile, rows
// key0 + (l & 7) + (l >> 4) * 8 and columns d0 + ((l >> 3) & 1) * 8 give the
// B fragments (b0, b1) of S = Q K^T for the k-step of dims d0 .. d0 + 15 in
// the n-tiles of keys key0 .. + 7 ([0], [1]) and key0 + 8 .. + 15 ([2], [3]):
// one instruction instead of eight 32-bit shared loads.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const __nv_bfloat16* p) {
  const auto addr = static_cast<uint32_t>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// The lane's address for ldmatrix_x4 of the K fragments above, in a tile
// whose rows are ld bf16 apart.
__device__ __forceinline__ const __nv_bfloat16* k_fragment_row(const __nv_bfloat16* tile, int ld, int key0, int d0,
                                                               int lane) {
  return tile + (key0 + (lane & 7) + (lane >> 4) * 8) * ld + d0 + ((lane >> 3) & 1) * 8;
}

// Four 8 x 8 bf16 matrices from shared memory, transposed: lane l gives the
// address of row l % 8 of matrix l / 8 and receives row (l % 4) * 2 + {0, 1},
// column l / 4 of each.
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const __nv_bfloat16* p) {
  const auto addr = static_cast<uint32_t>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// The lane's address for ldmatrix of the 16 x 16 block at (row0, col0) of a
// row-major tile whose rows are ld bf16 apart: rows row0 + (l & 7) +
// ((l >> 3) & 1) * 8, columns col0 + (l >> 4) * 8. ldmatrix_x4 from it gives
// the A fragment (a0 .. a3) of that block, as of a staged Q tile;
// ldmatrix_x4_trans from it, in a [key][dim] V tile at (key0, d0), gives the
// B fragments (b0, b1) of the n-tiles at d0 and d0 + 8 for the k-step of keys
// key0 .. key0 + 15.
__device__ __forceinline__ const __nv_bfloat16* a_fragment_row(const __nv_bfloat16* tile, int ld, int row0,
                                                               int col0, int lane) {
  return tile + (row0 + (lane & 7) + ((lane >> 3) & 1) * 8) * ld + col0 + (lane >> 4) * 8;
}

}  // namespace llmctl::kernels::cuda
