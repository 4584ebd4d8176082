// Request types the doctor's listener answers (bodies documented per type).
#pragma once

namespace llmctl::doctor {

// {} -> NodeFacts::to_json()
inline constexpr const char* kInfoRequest = "doctor.info";
// {"names": [..]} -> {"results": {name: {"addresses": [..]} | {"error": ".."}}}
inline constexpr const char* kResolveRequest = "doctor.resolve";
// {"address": A, "ports": [..], "timeout_ms": N}
//   -> {"probes": [{"port", "outcome", "elapsed_ms", "detail"}]}  (the peer connects to A)
inline constexpr const char* kConnectBackRequest = "doctor.connect_back";
// {"path": P, "deep": bool} -> ModelManifest::to_json()
inline constexpr const char* kModelRequest = "doctor.model";
// {"peers": [..]} -> {"checks": [{"id","status","message","fix"}]}: the peer's own
// local checks, ports excluded (its listener holds them).
inline constexpr const char* kChecksRequest = "doctor.checks";

}  // namespace llmctl::doctor
