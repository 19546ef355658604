/// How samples are stored in a WAV file's data chunk.
public enum WAVSampleFormat: Sendable, Equatable, CaseIterable {
    /// Unsigned, centred on 128.
    case pcm8
    case pcm16
    case pcm24
    case pcm32
    case float32
    case float64

    public var bytesPerSample: Int {
        switch self {
        case .pcm8: 1
        case .pcm16: 2
        case .pcm24: 3
        case .pcm32, .float32: 4
        case .float64: 8
        }
    }

    var formatTag: UInt16 {
        switch self {
        case .float32, .float64: WAVFormatTag.ieeeFloat
        default: WAVFormatTag.pcm
        }
    }

    init?(formatTag: UInt16, bitsPerSample: Int) {
        switch (formatTag, bitsPerSample) {
        case (WAVFormatTag.pcm, 8): self = .pcm8
        case (WAVFormatTag.pcm, 16): self = .pcm16
        case (WAVFormatTag.pcm, 24): self = .pcm24
        case (WAVFormatTag.pcm, 32): self = .pcm32
        case (WAVFormatTag.ieeeFloat, 32): self = .float32
        case (WAVFormatTag.ieeeFloat, 64): self = .float64
        default: return nil
        }
    }
}

/// wFormatTag values from the Microsoft registry (mmreg.h).
enum WAVFormatTag {
    static let pcm: UInt16 = 0x0001
    static let ieeeFloat: UInt16 = 0x0003
    static let extensible: UInt16 = 0xFFFE

    /// Names of codecs people actually meet, so a rejection says what the file was.
    static func name(of tag: UInt16) -> String? {
        switch tag {
        case 0x0001: "PCM"
        case 0x0002: "Microsoft ADPCM"
        case 0x0003: "IEEE float"
        case 0x0006: "A-law"
        case 0x0007: "µ-law"
        case 0x0011: "IMA ADPCM"
        case 0x0031: "GSM 6.10"
        case 0x0050: "MPEG"
        case 0x0055: "MPEG Layer 3"
        case 0x00FF, 0x1610: "AAC"
        case 0x2000: "AC-3"
        case 0xF1AC: "FLAC"
        case 0xFFFE: "extensible"
        default: nil
        }
    }
}
