@testable import ChorusWire
import NIOCore
import Testing

/// The wire's buffer memory: large blocks come back for the next buffer of their size, small ones and
/// growth keep their bytes.
@Suite(.serialized) struct WireMemoryTests {
    /// The pool's rules on blocks of its own (the process's pool serves every connection of every test).
    @Test func largeBlocksAreKeptWithinTheirLimitsAndHandedOutBySize() {
        var pool = WireMemory.Pool(maxBytes: 10 << 20)
        let blocks = (0..<6).map { _ in UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 16) }
        defer { blocks.forEach { $0.deallocate() } }
        let small = pool.keep(blocks[0], size: 4096)
        #expect(!small, "small blocks go back to malloc")
        let (first, second, third) = (pool.keep(blocks[1], size: 4 << 20), pool.keep(blocks[2], size: 4 << 20), pool.keep(blocks[3], size: 4 << 20))
        #expect(first && second)
        #expect(!third, "a third 4 MiB block would pass 10 MiB")
        let oneMiB = pool.keep(blocks[4], size: 1 << 20)
        #expect(oneMiB && pool.bytes == 9 << 20)
        let otherSize = pool.take(2 << 20)
        #expect(otherSize == nil, "only a block of the same size serves")
        let taken = pool.take(4 << 20)
        #expect(taken == blocks[2] && pool.bytes == 5 << 20)
        var many = WireMemory.Pool(maxBytes: 1 << 30)
        for block in blocks.prefix(WireMemory.keptPerSize) {
            let kept = many.keep(block, size: 1 << 20)
            #expect(kept)
        }
        let past = many.keep(blocks[5], size: 1 << 20)
        #expect(!past, "a few blocks per size, not more")
    }

    @Test func growingFromSmallToLargeKeepsTheBytes() {
        var buffer = WireMemory.allocator.buffer(capacity: 100)
        let bytes = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        buffer.writeBytes(bytes)
        buffer.reserveCapacity(minimumWritableBytes: 5 << 20)
        buffer.writeBytes(bytes)
        #expect(Array(buffer.readableBytesView) == bytes + bytes)
        var small = WireMemory.allocator.buffer(capacity: 10)
        small.writeBytes([1, 2, 3])
        small.reserveCapacity(4096)
        #expect(Array(small.readableBytesView) == [1, 2, 3])
    }

    @Test func keptBlocksStayUnderTheirLimit() {
        var buffers: [ByteBuffer] = []
        for _ in 0..<40 { buffers.append(WireMemory.allocator.buffer(capacity: 8 << 20)) }
        buffers.removeAll()
        #expect(WireMemory.keptBytes <= WireMemory.maxKeptBytes)
    }
}
