import CBLAS
import Foundation

/// Which OpenBLAS kernel this process runs, and advice when it is a slow one.
public enum BLASInfo {
    public static var kernel: String {
        openblas_get_corename().map { String(cString: $0) } ?? "unknown"
    }

    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// How matrix products use the cores, for start-up logs and benchmark headers.
    public static var threading: String {
        (BLAS.splits ? "OpenBLAS on 1 thread, products split over \(Parallel.cores) cores by Chorus"
            : "OpenBLAS's own \(threads) threads (CHORUS_BLAS_THREADS=openblas)")
            + (FreedBuffers.kept ? "; freed buffers up to \(FreedBuffers.largestReused >> 20) MiB kept for reuse" : "; glibc malloc as configured")
    }

    /// OpenBLAS 0.3.21 does not know recent CPUs and falls back to a generic kernel several times slower;
    /// the fix is an environment variable read when the library loads, so it can only be advised here.
    public static var advice: String? {
        guard ["Prescott", "Katmai", "Core2", "Nehalem"].contains(kernel),
              ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil else { return nil }
        return "OpenBLAS picked its generic \(kernel) kernel for this CPU; matrix products run several times slower. " +
            "Start the service with OPENBLAS_CORETYPE=Haswell (AVX2) or SkylakeX (AVX-512) if the CPU has them."
    }
}
