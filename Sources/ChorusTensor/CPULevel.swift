import CKernels

/// The instruction sets this process's own kernels use, chosen once per process in one place
/// (Sources/CKernels/cpu_features.c): the highest level the CPU and the OS run, lowered by `CHORUS_CPU`
/// for tests and A/B benchmarks. Each level includes the ones below it; every kernel has a path for each
/// level it uses and a plain one, so one binary runs on every x86-64 machine with AVX2.
public enum CPULevel: Int32, CaseIterable, Comparable, Sendable, CustomStringConvertible {
    /// No C vector kernels: the Swift loops (compiled for the binary's AVX2 target) and OpenBLAS.
    case plain
    /// AVX2, FMA, F16C (Haswell, Zen 1–3).
    case avx2
    /// AVX-512 F, DQ, BW, VL (Skylake-X).
    case avx512
    /// And VNNI's int8 dot products (Cascade Lake, Ice Lake).
    case avx512VNNI
    /// And BF16 dot products (Cooper Lake, Zen 4 and later).
    case avx512BF16
    /// And AMX tiles, with Linux's permission for their state (Sapphire Rapids and later).
    case amx

    public static func < (a: CPULevel, b: CPULevel) -> Bool { a.rawValue < b.rawValue }

    /// "plain", "avx2", "avx512", "avx512-vnni", "avx512-bf16", "amx": the names `CHORUS_CPU` takes.
    public var description: String { String(cString: chorus_cpu_level_name(rawValue)) }

    /// The level a `CHORUS_CPU` value names; nil for anything else (empty and "auto" included).
    public init?(name: String) {
        guard let level = CPULevel(rawValue: chorus_cpu_parse_level(name)) else { return nil }
        self = level
    }

    /// The level every kernel of this process uses.
    public static var chosen: CPULevel { CPULevel(rawValue: chorus_cpu_level()) ?? .plain }

    /// The highest level this CPU and OS run.
    public static var detected: CPULevel { CPULevel(rawValue: chorus_cpu_detected()) ?? .plain }

    public static let variable = "CHORUS_CPU"

    /// Why `value` cannot be `CHORUS_CPU`'s, or nil when it can (unset, empty, "auto" or a level's name).
    public static func problem(with value: String?) -> String? {
        guard Int(chorus_cpu_parse_level(value)) == CHORUS_CPU_INVALID else { return nil }  // checked: a small enum constant
        return "\(variable)=\(value ?? "") names no instruction-set level; it takes one of "
            + allCases.map(\.description).joined(separator: ", ") + " (or auto: the highest this CPU runs)"
    }

    /// What was chosen and why, for start-up logs and `chorus --version`.
    public static var choice: String {
        let requested = chorus_cpu_requested()
        let (chosen, detected) = (chosen, detected)
        if detected == .amx && chosen == .avx512BF16 && requested != CPULevel.avx512BF16.rawValue && chorus_cpu_amx_permitted() == 0 {
            return "\(chosen) (Linux did not grant this process AMX's tile state, so no AMX)"
        }
        guard let asked = CPULevel(rawValue: requested) else {
            return "\(chosen), the highest this CPU runs (\(variable) lowers it)"
        }
        if asked > detected { return "\(chosen): \(variable)=\(asked) asks for more than this CPU runs" }
        return chosen == detected ? "\(chosen) (\(variable)=\(asked), the highest this CPU runs)"
            : "\(chosen) (\(variable)=\(asked); this CPU runs up to \(detected))"
    }
}
