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

    /// The OpenBLAS core type to run instead of `current`, or nil to keep it. OpenBLAS 0.3.21 (Debian 12's)
    /// does not know CPUs newer than itself (Emerald Rapids, family 6 model 207, among them) and falls back
    /// to its generic Prescott kernel, on which Whisper base's encoder ran 4× slower (4.4 s against 1.1 s
    /// for two windows). Newer OpenBLAS releases map those CPUs to the kernels their vector unit runs; this
    /// does the same from `chorus_cpu_vector_level`. A value the environment sets is always kept: it may be
    /// there to avoid a kernel that miscomputes on that machine.
    public static func replacementKernel(current: String, environment: [String: String], vectorLevel: Int) -> String? {
        guard environment["OPENBLAS_CORETYPE"] == nil, genericKernels.contains(current) else { return nil }
        switch vectorLevel {
        case 3: return "Cooperlake"
        case 2: return "SkylakeX"
        case 1: return "Haswell"
        default: return nil
        }
    }

    /// `replacementKernel` for this process and CPU.
    public static var replacement: String? {
        replacementKernel(current: kernel, environment: ProcessInfo.processInfo.environment, vectorLevel: Int(chorus_cpu_vector_level()))
    }

    /// Set by the chorus binary when it started itself again with a replacement kernel: "old new".
    public static let replacedVariable = "CHORUS_OPENBLAS_REPLACED"

    /// A start-up log line saying which kernel was replaced, when one was.
    public static var replacementNote: String? {
        guard let replaced = ProcessInfo.processInfo.environment[replacedVariable]?.split(separator: " "), replaced.count == 2 else { return nil }
        return "OpenBLAS did not recognise this CPU and picked its generic \(replaced[0]) kernel; chorus started itself again with "
            + "OPENBLAS_CORETYPE=\(replaced[1]) for this CPU's vector unit (set OPENBLAS_CORETYPE yourself to choose another)"
    }

    /// Advice when this process still runs a generic kernel that a better one could replace (a library
    /// user, or a test process, which cannot restart itself).
    public static var advice: String? {
        guard let better = replacement else { return nil }
        return "OpenBLAS picked its generic \(kernel) kernel for this CPU; matrix products run several times slower. "
            + "Start the process with OPENBLAS_CORETYPE=\(better) (the chorus binary does this itself)."
    }
}
