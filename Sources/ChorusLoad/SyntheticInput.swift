import ChorusMedia
import Foundation

/// Inputs made up for a quick run when no real ones are at hand: seconds of audio, an image of a side,
/// a prompt of some words. Seeded, so two runs send the same bytes; a few variants are cycled so a
/// server cannot answer every call from one cached result.
public enum SyntheticInput: Sendable, Equatable {
    /// A WAV, 16 kHz mono 16-bit: a gliding tone over soft noise.
    case audio(seconds: Double)
    /// A PNG, RGB, side × side: gradients with a seeded pattern.
    case image(side: Int)
    /// Words drawn from a small vocabulary.
    case text(words: Int)

    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    /// `audio:5s`, `image:512`, `text:64`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { throw ParseError(description: "--synthetic takes KIND:SIZE (audio:5s, image:512, text:64), got '\(text)'") }
        switch parts[0] {
        case "audio":
            let number = parts[1].hasSuffix("s") ? String(parts[1].dropLast()) : parts[1]
            guard let seconds = Double(number), seconds.isFinite, seconds > 0, seconds <= 600 else {
                throw ParseError(description: "--synthetic audio takes 0 ... 600 seconds, got '\(parts[1])'")
            }
            self = .audio(seconds: seconds)
        case "image":
            guard let side = Int(parts[1]), (8...4096).contains(side) else {
                throw ParseError(description: "--synthetic image takes a side of 8 ... 4096 pixels, got '\(parts[1])'")
            }
            self = .image(side: side)
        case "text":
            guard let words = Int(parts[1]), (1...100_000).contains(words) else {
                throw ParseError(description: "--synthetic text takes 1 ... 100000 words, got '\(parts[1])'")
            }
            self = .text(words: words)
        default:
            throw ParseError(description: "--synthetic kinds are audio, image and text, got '\(parts[0])'")
        }
    }

    /// The variant-th input: file bytes for audio and images, the words for text.
    public func make(variant: Int, seed: UInt64) throws -> Value {
        var random = SplitMix(seed: seed &+ UInt64(truncatingIfNeeded: variant) &* 0x9E37_79B9)
        switch self {
        case .audio(let seconds):
            let rate = 16_000, count = Int(seconds * Double(rate))  // checked: seconds ≤ 600
            let start = 200 + 300 * random.unit(), end = 400 + 600 * random.unit()
            var phase = 0.0
            let samples = (0..<count).map { i -> Float in
                let t = Double(i) / Double(count)
                phase += 2 * .pi * (start + (end - start) * t) / Double(rate)
                return Float(0.3 * sin(phase) + 0.02 * (random.unit() - 0.5))
            }
            return .bytes(try WAVCodec.encode(AudioSamples(sampleRate: rate, mono: samples)), name: "synthetic.wav", seconds: seconds)
        case .image(let side):
            let a = random.unit(), b = random.unit()
            var pixels = [UInt8](repeating: 0, count: side * side * 3)
            for y in 0..<side {
                for x in 0..<side {
                    let i = (y * side + x) * 3
                    pixels[i] = UInt8(255 * Double(x) / Double(side))  // checked: in 0 ... 255
                    pixels[i + 1] = UInt8(255 * Double(y) / Double(side))  // checked: in 0 ... 255
                    pixels[i + 2] = UInt8(127.5 + 127.5 * sin(a * 40 * Double(x) / Double(side) + b * 40 * Double(y) / Double(side)))  // checked: in 0 ... 255
                }
            }
            return .bytes(try ImageCodec.encodePNG(Image(width: side, height: side, channels: 3, pixels: pixels)), name: "synthetic.png", seconds: nil)
        case .text(let words):
            let vocabulary = ["a", "quiet", "harbor", "at", "dawn", "with", "red", "boats", "and", "gulls", "over", "the", "water",
                              "mountain", "village", "in", "snow", "lights", "glow", "warm", "old", "stone", "bridge", "river"]
            return .text((0..<words).map { _ in vocabulary[Int(random.next() % UInt64(vocabulary.count))] }.joined(separator: " "))  // checked: below the count
        }
    }

    public enum Value: Sendable {
        case bytes([UInt8], name: String, seconds: Double?)
        case text(String)
    }
}
