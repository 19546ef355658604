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
/// The thresholds govern the main arena only. A thread that mallocs while another holds the main arena's
/// lock gets an arena of its own, made of 64 MiB heaps, and glibc unmaps such a heap as soon as its last
/// block is freed, whatever the trim threshold says: Stable Diffusion's steps mapped and faulted in about
/// 44 fresh heaps each (650 000 page faults over five 256² steps). A model's threads allocate a few large
/// blocks per layer, so they share one arena, which keeps every freed block; the terrain and SD steps ran
/// no slower for the shared lock in runs taken in turns.
///
/// `CHORUS_MALLOC=default` leaves glibc as it is, for comparison.
public enum FreedBuffers {
    /// Blocks up to this size come from the heap and go back to it when freed (glibc's largest mmap threshold).
    public static let largestReused = 32 << 20

    /// True once the thresholds are raised; opening a weight file or the first matrix product
    /// (`BLAS.splits`) does it, before a model's threads have made arenas of their own.
    public static let kept: Bool = {
        #if os(Linux)
        guard ProcessInfo.processInfo.environment["CHORUS_MALLOC"] != "default" else { return false }
        // M_MMAP_THRESHOLD (-3), M_TRIM_THRESHOLD (-1) and M_ARENA_MAX (-8) of <malloc.h>.
        return mallopt(-3, Int32(largestReused)) == 1 && mallopt(-1, Int32(1 << 30)) == 1 && mallopt(-8, 1) == 1
        #else
        return false
        #endif
    }()
}
