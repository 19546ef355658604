import Foundation

#if os(Linux)
/// glibc's `int mallopt(int, int)`; <malloc.h> is not part of Swift's Glibc module.
@_silgen_name("mallopt") private func mallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif

/// glibc hands any allocation above its mmap threshold (128 KiB at start, raised as such blocks are freed)
/// straight to the kernel, and gives it back on free; a freed heap top is trimmed too. A model allocates
/// and frees the same few megabyte-sized activations every layer, so each one came back as fresh pages to
/// fault in and zero: 15% of the terrain UNet's time was spent in the kernel doing that. Raising both
/// thresholds keeps the freed buffers in the process for the next layer.
///
/// `CHORUS_MALLOC=default` leaves glibc as it is, for comparison.
public enum FreedBuffers {
    /// Blocks up to this size come from the heap and go back to it when freed (glibc's largest mmap threshold).
    public static let largestReused = 32 << 20

    /// True once the thresholds are raised; the first matrix product does it (`BLAS.splits`).
    public static let kept: Bool = {
        #if os(Linux)
        guard ProcessInfo.processInfo.environment["CHORUS_MALLOC"] != "default" else { return false }
        // M_MMAP_THRESHOLD (-3) and M_TRIM_THRESHOLD (-1) of <malloc.h>.
        return mallopt(-3, Int32(largestReused)) == 1 && mallopt(-1, Int32(1 << 30)) == 1
        #else
        return false
        #endif
    }()
}
