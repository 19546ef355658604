@_spi(CustomByteBufferAllocator) import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The memory of the wire's buffers. NIO rounds a buffer's capacity up to a power of two, so a 16 MiB
/// message lives in a 32 MiB block: past glibc's largest mmap threshold, every such block is a fresh
/// mmap whose pages fault in as the message is written and an munmap when it is freed: a third of a
/// 16 MiB echo's time went there. Blocks of 1 MiB and up are kept when freed (up to `maxKeptBytes` in
/// all, a few per size) and handed out again with their pages already in place; smaller ones go
/// straight to malloc.
public enum WireMemory {
    /// Buffers for frames and messages; connections allocate with it too.
    public static let allocator = ByteBufferAllocator(allocate: wireAllocate, reallocate: wireReallocate,
                                                      deallocate: wireFree, copy: wireCopy)

    /// Blocks kept for reuse at most, in bytes.
    public static let maxKeptBytes = 128 << 20
    static let smallestKept = 1 << 20
    static let keptPerSize = 4

    /// Blocks kept now, in bytes (tests).
    public static var keptBytes: Int { pool.withLock { $0.bytes } }

    /// Freed blocks by size, within the limits above.
    struct Pool {
        var free: [Int: [UnsafeMutableRawPointer]] = [:]
        var bytes = 0
        var maxBytes = WireMemory.maxKeptBytes

        /// A kept block of exactly `size` bytes, if there is one.
        mutating func take(_ size: Int) -> UnsafeMutableRawPointer? {
            guard size >= WireMemory.smallestKept, let block = free[size]?.popLast() else { return nil }
            bytes -= size
            return block
        }

        /// Keeps a freed block when it is large and the limits allow; false: the caller frees it.
        mutating func keep(_ block: UnsafeMutableRawPointer, size: Int) -> Bool {
            guard size >= WireMemory.smallestKept, bytes + size <= maxBytes,
                  free[size, default: []].count < WireMemory.keptPerSize else { return false }
            free[size, default: []].append(block)
            bytes += size
            return true
        }
    }

    static let pool = Mutex(Pool())
}

/// Each block starts with a header holding its usable size, so that freeing knows which size it was.
private let headerBytes = 64

private func wireAllocate(_ size: size_t) -> UnsafeMutableRawPointer? {
    let size = Int(size)  // checked: NIO's capacities are UInt32
    if size >= WireMemory.smallestKept, let block = WireMemory.pool.withLock({ $0.take(size) }) {
        return block + headerBytes
    }
    guard let block = malloc(size + headerBytes) else { return nil }
    block.storeBytes(of: size, as: Int.self)
    return block + headerBytes
}

private func wireFree(_ pointer: UnsafeMutableRawPointer) {
    let block = pointer - headerBytes
    let size = block.load(as: Int.self)
    if size >= WireMemory.smallestKept, WireMemory.pool.withLock({ $0.keep(block, size: size) }) { return }
    free(block)
}

private func wireReallocate(_ pointer: UnsafeMutableRawPointer?, _ oldSize: size_t, _ newSize: size_t) -> UnsafeMutableRawPointer? {
    guard let pointer else { return wireAllocate(newSize) }
    let block = pointer - headerBytes
    let size = block.load(as: Int.self)
    // Small to small: malloc's own realloc (it may grow in place).
    let newSize = Int(newSize)  // checked: NIO's capacities are UInt32
    if size < WireMemory.smallestKept && newSize < WireMemory.smallestKept {
        guard let grown = realloc(block, newSize + headerBytes) else { return nil }
        grown.storeBytes(of: newSize, as: Int.self)
        return grown + headerBytes
    }
    guard let moved = wireAllocate(size_t(newSize)) else { return nil }
    moved.copyMemory(from: pointer, byteCount: min(size, newSize))
    wireFree(pointer)
    return moved
}

private func wireCopy(_ destination: UnsafeMutableRawPointer, _ source: UnsafeRawPointer, _ count: size_t) {
    destination.copyMemory(from: source, byteCount: Int(count))  // checked: NIO's capacities are UInt32
}
