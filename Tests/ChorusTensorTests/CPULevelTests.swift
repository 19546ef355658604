import CKernels
import ChorusTensor
import Foundation
import Testing

/// The one choice of instruction sets (Sources/CKernels/cpu_features.c) against what Linux says the CPU
/// has, and every kernel family against that choice.
@Suite struct CPULevelTests {
    /// /proc/cpuinfo's flags: what the kernel found by CPUID and enabled.
    static let flags: Set<String> = {
        let text = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let line = text.split(separator: "\n").first { $0.hasPrefix("flags") } ?? ""
        return Set(line.split(separator: ":", maxSplits: 1).last?.split(separator: " ").map(String.init) ?? [])
    }()

    /// The level /proc/cpuinfo's flags imply, by the same rules.
    static var levelFromFlags: CPULevel {
        let has = { (names: [String]) in names.allSatisfy(flags.contains) }
        guard has(["avx2", "fma", "f16c"]) else { return .plain }
        guard has(["avx512f", "avx512dq", "avx512bw", "avx512vl"]) else { return .avx2 }
        guard has(["avx512_vnni"]) else { return .avx512 }
        guard has(["avx512_bf16"]) else { return .avx512VNNI }
        return has(["amx_tile", "amx_bf16", "amx_int8"]) ? .amx : .avx512BF16
    }

    @Test func theDetectedLevelIsWhatLinuxSaysThisCPUHas() throws {
        try #require(!Self.flags.isEmpty, "no flags line in /proc/cpuinfo")
        #expect(CPULevel.detected == Self.levelFromFlags, "flags: \(Self.flags.sorted().joined(separator: " "))")
        #expect(CPULevel.detected >= .avx2, "the binary's floor is AVX2: CI machines have it")
    }

    @Test func theChosenLevelIsTheDetectedOneLoweredByTheEnvironment() {
        let asked = ProcessInfo.processInfo.environment[CPULevel.variable].flatMap(CPULevel.init(name:))
        var expected = min(asked ?? CPULevel.detected, CPULevel.detected)
        if expected == .amx && chorus_cpu_amx_permitted() == 0 { expected = .avx512BF16 }
        #expect(CPULevel.chosen == expected)
        #expect(CPULevel.choice.hasPrefix(expected.description))
    }

    @Test func levelNamesReadBackAndAnythingElseIsNamedAsAProblem() {
        for level in CPULevel.allCases { #expect(CPULevel(name: level.description) == level) }
        #expect(CPULevel.allCases.map(\.description) == ["plain", "avx2", "avx512", "avx512-vnni", "avx512-bf16", "amx"])
        for unset in [nil, "", "auto"] as [String?] { #expect(CPULevel.problem(with: unset) == nil) }
        #expect(CPULevel(name: "auto") == nil)
        for wrong in ["AVX2", "avx-512", "sse4", " avx2", "avx2 "] {
            let problem = CPULevel.problem(with: wrong)
            #expect(problem?.contains("CHORUS_CPU=\(wrong) names no instruction-set level") == true)
            #expect(problem?.contains("plain, avx2, avx512, avx512-vnni, avx512-bf16, amx") == true)
        }
    }

    @Test func everyKernelFamilyRunsExactlyAtTheLevelsItNeeds() {
        let level = CPULevel.chosen
        #expect((chorus_vector_math_avx512() != 0) == (level >= .avx512))
        #expect((chorus_half_gemv_supported() != 0) == (level >= .avx512))
        #expect((chorus_few_query_supported(64) != 0) == (level >= .avx512))
        #expect((chorus_gemm_columns_supported(32) != 0) == (level >= .avx512))
        #expect((chorus_gemm_columns_supported(16) != 0) == (level >= .avx2))
        #expect((chorus_conv_block_rows_supported(8) != 0) == (level >= .avx512))
        #expect((chorus_conv_block_rows_supported(6) != 0) == (level >= .avx2))
        #expect(chorus_quant_matmul_level() == (level >= .avx512VNNI ? 2 : level >= .avx2 ? 1 : 0))
    }
}
