import CBLAS
import CKernels
import Foundation

/// Which OpenBLAS kernel this process runs, and the one to run instead when OpenBLAS fell back to a slow one.
public enum BLASInfo {
    public static var kernel: String {
        openblas_get_corename().map { String(cString: $0) } ?? "unknown"
    }

    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// OpenBLAS's build configuration ("OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Cooperlake MAX_THREADS=64").
    public static var configuration: String {
        openblas_get_config().map { String(cString: $0) } ?? "unknown"
    }

    /// How matrix products use the cores, for start-up logs and benchmark headers.
    public static var threading: String {
        (BLAS.splits ? "OpenBLAS on 1 thread, products split over \(Parallel.cores) cores by Chorus"
            : "OpenBLAS's own \(threads) threads (CHORUS_BLAS_THREADS=openblas)")
            + (FreedBuffers.kept ? "; freed buffers up to \(FreedBuffers.largestReused >> 20) MiB kept for reuse" : "; glibc malloc as configured")
    }

    /// The kernels OpenBLAS falls back to on a CPU it does not recognise.
    static let genericKernels: Set<String> = ["Prescott", "Katmai", "Core2", "Nehalem"]

    /// OpenBLAS's x86-64 kernels for the levels of `CPULevel`, by the instruction sets they use: AVX (0),
    /// AVX2 (1), AVX-512 (2), AVX-512 with BF16 (3), AMX (4). Names not here are kept as they are.
    static let kernelRank: [String: Int] = ["Sandybridge": 0, "Haswell": 1, "Zen": 1, "SkylakeX": 2, "Cooperlake": 3, "SapphireRapids": 4]

    /// The widest OpenBLAS kernel a level allows; Debian 12's OpenBLAS (0.3.21) has no SapphireRapids
    /// kernel, so AMX gets Cooper Lake's. Plain (no C vector kernels of Chorus's own) leaves OpenBLAS at AVX2,
    /// the binary's floor.
    static func kernel(for level: CPULevel) -> String {
        switch level {
        case .plain, .avx2: "Haswell"
        case .avx512, .avx512VNNI: "SkylakeX"
        case .avx512BF16, .amx: "Cooperlake"
        }
    }

    /// The OpenBLAS core type to run instead of `current`, or nil to keep it. OpenBLAS 0.3.21 (Debian 12's)
    /// does not know CPUs newer than itself (Emerald Rapids, family 6 model 207, among them) and falls back
    /// to its generic Prescott kernel, on which Whisper base's encoder ran 4× slower (4.4 s against 1.1 s
    /// for two windows); newer OpenBLAS releases map those CPUs to the kernels their vector unit runs, and this
    /// does the same from `CPULevel`. When `CHORUS_CPU` lowered the level, a kernel wider than the level is
    /// replaced too, so a benchmark of the AVX2 path runs AVX2 everywhere. A value the environment sets is
    /// always kept: it may be there to avoid a kernel that miscomputes on that machine.
    public static func replacementKernel(current: String, environment: [String: String], level: CPULevel, detected: CPULevel) -> String? {
        guard environment["OPENBLAS_CORETYPE"] == nil else { return nil }
        let allowed = kernel(for: level)
        if genericKernels.contains(current) { return detected >= .avx2 ? allowed : nil }
        guard let rank = kernelRank[current], let allowedRank = kernelRank[allowed], rank > allowedRank else { return nil }
        return allowed
    }

    /// `replacementKernel` for this process and CPU.
    public static var replacement: String? {
        replacementKernel(current: kernel, environment: ProcessInfo.processInfo.environment, level: .chosen, detected: .detected)
    }

    /// Set by the chorus binary when it started itself again with a replacement kernel: "old new".
    public static let replacedVariable = "CHORUS_OPENBLAS_REPLACED"

    /// A start-up log line saying which kernel was replaced, when one was.
    public static var replacementNote: String? {
        guard let replaced = ProcessInfo.processInfo.environment[replacedVariable]?.split(separator: " "), replaced.count == 2 else { return nil }
        guard genericKernels.contains(String(replaced[0])) else {
            return "\(CPULevel.variable)=\(CPULevel.chosen) holds OpenBLAS to its \(replaced[1]) kernel too (it chose \(replaced[0])): "
                + "chorus started itself again with OPENBLAS_CORETYPE=\(replaced[1])"
        }
        return "OpenBLAS did not recognise this CPU and picked its generic \(replaced[0]) kernel; chorus started itself again with "
            + "OPENBLAS_CORETYPE=\(replaced[1]) for this CPU's vector unit (set OPENBLAS_CORETYPE yourself to choose another)"
    }

    /// Advice when this process still runs a generic kernel that a better one could replace (a library
    /// user, or a test process, which cannot restart itself).
    public static var advice: String? {
        guard let better = replacement, genericKernels.contains(kernel) else { return nil }
        return "OpenBLAS picked its generic \(kernel) kernel for this CPU; matrix products run several times slower. "
            + "Start the process with OPENBLAS_CORETYPE=\(better) (the chorus binary does this itself)."
    }
}
