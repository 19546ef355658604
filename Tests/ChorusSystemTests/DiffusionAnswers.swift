import ChorusAPI
import ChorusWire
import Foundation

/// Reading DiffusionService's answers in the process tests.
extension ResponseStream<DiffusionEvent> {
    /// Every event of the stream, in order.
    func collected() async throws -> [DiffusionEvent] {
        var events: [DiffusionEvent] = []
        for try await event in self { events.append(event) }
        return events
    }
}

/// PNG header fields: (width, height, bit depth, color type).
func pngHeader(_ data: Data) -> (Int, Int, Int, Int) {
    let b = [UInt8](data)
    func u32(_ i: Int) -> Int { Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3]) }
    return (u32(16), u32(20), Int(b[24]), Int(b[25]))
}
