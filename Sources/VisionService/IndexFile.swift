import CZlib
import Foundation

/// The on-disk form of one index, written whole and atomically (temporary file, fsync, rename), so a
/// crash leaves either the old file or the new one:
///
///     "CHORUSIX"  u32 version = 1  u32 dimension  u64 count
///     count × (u32 byte length, UTF-8 id)
///     count × dimension float32
///     u32 CRC-32 of everything before it
///
/// All integers and floats little-endian.
enum IndexFile {
    static let magic = Array("CHORUSIX".utf8)
    static let suffix = ".chidx"

    struct Corrupt: Error, CustomStringConvertible {
        let path: String
        let reason: String
        var description: String { "\(path) is corrupt: \(reason)" }
    }

    static func encode(_ index: ImageIndex) -> [UInt8] {
        var out = magic
        out.appendLittleEndian(UInt32(1))
        out.appendLittleEndian(UInt32(index.dimension))
        out.appendLittleEndian(UInt64(index.count))
        for id in index.ids {
            let bytes = Array(id.utf8)
            out.appendLittleEndian(UInt32(bytes.count))
            out += bytes
        }
        out.reserveCapacity(out.count + index.vectors.count * 4 + 4)
        for value in index.vectors { out.appendLittleEndian(value.bitPattern) }
        out.appendLittleEndian(checksum(out))
        return out
    }

    static func decode(_ bytes: [UInt8], path: String) throws -> ImageIndex {
        func corrupt(_ reason: String) -> Corrupt { Corrupt(path: path, reason: reason) }
        guard bytes.count >= magic.count + 20, Array(bytes.prefix(magic.count)) == magic else {
            throw corrupt("not a Chorus index file (bad magic or too short: \(bytes.count) bytes)")
        }
        let body = bytes.count - 4
        var reader = ByteReader(bytes: bytes, offset: magic.count, end: body)
        let stored = UInt32(littleEndianBytes: bytes[body...])
        guard stored == checksum(Array(bytes[..<body])) else { throw corrupt("checksum mismatch (truncated or damaged)") }
        guard let version = reader.u32(), version == 1 else { throw corrupt("unknown version") }
        guard let dimension = reader.u32().map(Int.init), dimension > 0, dimension <= 65536,
              let count = reader.u64().map(Int.init), count <= body else {
            throw corrupt("implausible header")
        }
        var ids: [String] = []
        ids.reserveCapacity(count)
        for _ in 0..<count {
            guard let length = reader.u32().map(Int.init), let raw = reader.bytes(length),
                  let id = String(validating: raw, as: UTF8.self) else { throw corrupt("bad id entry \(ids.count)") }
            ids.append(id)
        }
        guard reader.remaining == count * dimension * 4 else {
            throw corrupt("expected \(count)×\(dimension) vectors, found \(reader.remaining) bytes")
        }
        var vectors = [Float](repeating: 0, count: count * dimension)
        for i in vectors.indices { vectors[i] = Float(bitPattern: reader.u32()!) }
        return ImageIndex(dimension: dimension, ids: ids, vectors: vectors)
    }

    /// Writes `bytes` to `path` so that readers see the old file or the complete new one.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let temporary = "\(path).tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw POSIXFailure(operation: "open \(temporary)") }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let failure = POSIXFailure(operation: "write \(temporary)")
                close(fd); unlink(temporary)
                throw failure
            }
            written += n
        }
        guard fsync(fd) == 0 else {
            let failure = POSIXFailure(operation: "fsync \(temporary)")
            close(fd); unlink(temporary)
            throw failure
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let failure = POSIXFailure(operation: "rename \(temporary) to \(path)")
            unlink(temporary)
            throw failure
        }
    }

    private static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
    }
}

struct POSIXFailure: Error, CustomStringConvertible {
    let operation: String
    let code = errno
    var description: String { "\(operation): \(String(cString: strerror(code)))" }
}

private struct ByteReader {
    let bytes: [UInt8]
    var offset: Int
    let end: Int

    var remaining: Int { end - offset }

    mutating func bytes(_ n: Int) -> ArraySlice<UInt8>? {
        guard n >= 0, n <= remaining else { return nil }
        defer { offset += n }
        return bytes[offset..<(offset + n)]
    }

    mutating func u32() -> UInt32? { bytes(4).map { UInt32(littleEndianBytes: $0) } }

    mutating func u64() -> UInt64? {
        guard let low = u32(), let high = u32() else { return nil }
        return UInt64(high) << 32 | UInt64(low)
    }
}

extension UInt32 {
    init(littleEndianBytes b: ArraySlice<UInt8>) {
        let s = b.startIndex
        self = UInt32(b[s]) | UInt32(b[s + 1]) << 8 | UInt32(b[s + 2]) << 16 | UInt32(b[s + 3]) << 24
    }
}

extension Array where Element == UInt8 {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}
