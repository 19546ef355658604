import Foundation

/// Resident memory of this process, read from /proc (Linux); 0 where /proc is missing.
public enum ProcessMemory {
    public static var residentBytes: UInt64 {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = UInt64(fields[1]) else { return 0 }
        return pages * UInt64(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// The high-water mark (VmHWM).
    public static var peakResidentBytes: UInt64 {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kilobytes = line.split(separator: " ").compactMap { UInt64($0) }.first ?? 0
            return kilobytes * 1024
        }
        return 0
    }

    /// Hands freed heap memory back to the system. The tensor layer keeps freed buffers for reuse (a trim
    /// threshold of 1 GiB), which is right between calls but not after a model is unloaded.
    public static func returnFreedMemory() {
        #if os(Linux)
        _ = glibcMallocTrim(0)
        #endif
    }
}

#if os(Linux)
/// glibc's `int malloc_trim(size_t pad)`, from <malloc.h>, which the Glibc module does not export.
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32
#endif
