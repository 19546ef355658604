import ChorusWire
import NIOCore
import Testing

/// The wire's buffer memory: large blocks come back for the next buffer of their size, small ones and
/// growth keep their bytes.
@Suite(.serialized) struct WireMemoryTests {
    @Test func aFreedLargeBlockServesTheNextBufferOfItsSize() {
        WireMemory.releaseKept()
        var first: ByteBuffer? = WireMemory.allocator.buffer(capacity: 3 << 20)  // NIO rounds up: a 4 MiB block
        first!.writeRepeatingByte(1, count: 3 << 20)
        let address = first!.withUnsafeReadableBytes { Int(bitPattern: $0.baseAddress) }
        first = nil
        #expect(WireMemory.keptBytes == 4 << 20)
        let second = WireMemory.allocator.buffer(capacity: 3 << 20)
        #expect(second.withVeryUnsafeBytes { Int(bitPattern: $0.baseAddress) } == address, "the kept block was handed out again")
        #expect(WireMemory.keptBytes == 0)
        // Small buffers are malloc's business.
        _ = WireMemory.allocator.buffer(capacity: 1000)
        #expect(WireMemory.keptBytes == 0)
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
