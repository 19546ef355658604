import Foundation

/// A file opened for positional reads (`pread`, safe from several threads at once), closed when released.
final class ReadOnlyFile: @unchecked Sendable {
    let name: String
    let size: Int
    private let descriptor: Int32

    init(path: String) throws {
        name = (path as NSString).lastPathComponent
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw WeightFileError(name, "cannot read: \(String(cString: strerror(errno)))") }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw WeightFileError(name, "cannot read: \(reason)")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(descriptor)
            throw WeightFileError(name, "cannot read: not a regular file")
        }
        size = Int(info.st_size)
    }

    deinit { close(descriptor) }

    /// Fills `buffer` from byte `offset`, or throws naming what was being read when the file ends first
    /// (it shrank after it was opened) or the read fails.
    func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer, tensor: String? = nil) throws {
        var done = 0
        while done < buffer.count {
            let n = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let what = tensor.map { "tensor '\($0)'" } ?? "the header"
                let reason = n < 0 ? String(cString: strerror(errno)) : "the file ends after \(offset + done) bytes"
                throw WeightFileError(name, "cannot read \(what) (\(buffer.count) bytes at \(offset)): \(reason)")
            }
            done += n
        }
    }

    /// `count` values of `size` bytes each from `offset`, as Float32: little-endian float32 goes straight into
    /// the array, anything else through a bounded buffer that `widen(bytes, destination, count)` converts.
    func floats(at offset: Int, count: Int, size: Int, float32: Bool, tensor: String,
                widen: (UnsafeRawBufferPointer, UnsafeMutablePointer<Float>, Int) -> Void) throws -> [Float] {
        try [Float](unsafeUninitializedCapacity: count) { dst, initialized in
            if float32 && 1.littleEndian == 1 {
                try read(at: offset, into: UnsafeMutableRawBufferPointer(dst), tensor: tensor)
            } else {
                let perChunk = max(1, (4 << 20) / size)
                var bytes = [UInt8](repeating: 0, count: min(count, perChunk) * size)
                var done = 0
                while done < count {
                    let n = min(perChunk, count - done)
                    try bytes.withUnsafeMutableBytes { raw in
                        let chunk = UnsafeMutableRawBufferPointer(rebasing: raw[0..<(n * size)])
                        try read(at: offset + done * size, into: chunk, tensor: tensor)
                        widen(UnsafeRawBufferPointer(chunk), dst.baseAddress! + done, n)
                    }
                    done += n
                }
            }
            initialized = count
        }
    }
}
