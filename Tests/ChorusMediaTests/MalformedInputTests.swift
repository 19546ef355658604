import Testing
@testable import ChorusMedia

/// Damaged uploads must come back as MediaError: never a crash, an exit() from libjpeg, or a
/// different error type.
@Suite("Malformed input")
struct MalformedInputTests {
    private static let mutations = 150

    private func mutate(_ bytes: [UInt8], using generator: inout SeededGenerator) -> [UInt8] {
        var damaged = bytes
        for _ in 0..<Int.random(in: 1...4, using: &generator) {
            let position = Int.random(in: 0..<damaged.count, using: &generator)
            damaged[position] = UInt8.random(in: 0...255, using: &generator)
        }
        if Bool.random(using: &generator) {
            damaged.removeLast(Int.random(in: 0..<damaged.count, using: &generator))
        }
        return damaged
    }

    private func survives(_ original: [UInt8], seed: UInt64, decode: ([UInt8]) throws -> Void) {
        var generator = SeededGenerator(seed: seed)
        for _ in 0..<Self.mutations {
            let damaged = mutate(original, using: &generator)
            do {
                try decode(damaged)
            } catch is MediaError {
                // expected for most mutations
            } catch {
                Issue.record("non-MediaError \(error)")
            }
        }
    }

    @Test("mutated PNGs")
    func png() throws {
        let image = try testImage(width: 24, height: 16, channels: 4)
        survives(try ImageCodec.encodePNG(image), seed: 1) { _ = try ImageCodec.decode($0) }
        let image16 = try Image16(width: 8, height: 8, pixels: (0..<64).map { UInt16($0 * 1000) })
        survives(try ImageCodec.encodePNG(image16), seed: 2) { _ = try ImageCodec.decodeGray16($0) }
    }

    @Test("mutated JPEGs")
    func jpeg() throws {
        let image = try testImage(width: 24, height: 16, channels: 3)
        survives(try ImageCodec.encodeJPEG(image), seed: 3) { _ = try ImageCodec.decode($0) }
    }

    @Test("mutated WAVs")
    func wav() throws {
        let audio = try AudioSamples(sampleRate: 16_000, channels: [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
        for (index, format) in WAVSampleFormat.allCases.enumerated() {
            survives(try WAVCodec.encode(audio, format: format), seed: UInt64(10 + index)) { _ = try WAVCodec.decode($0) }
        }
    }
}
