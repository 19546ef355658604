import ChorusMedia
import ChorusTensor
import CZlib
import ChorusText
import Foundation

/// One segment of a transcript.
public struct TranscriptSegment: Sendable, Equatable, Codable {
    public var id: Int
    public var start: Double
    public var end: Double
    public var text: String
    public var tokens: [Int]
    public var averageLogprob: Float
    public var compressionRatio: Float
    public var noSpeechProbability: Float
    public var temperature: Float
    public var words: [TimedWord] = []
}

public struct Transcription: Sendable, Equatable {
    public var text: String
    public var language: String
    public var languageProbability: Float
    public var duration: Double
    public var segments: [TranscriptSegment]
    /// How many windows went through the encoder and decoder (silent ones are skipped, not counted).
    public var windows = 0
    /// Tokens the decoder produced for the windows' kept results, timestamps included (a result never holds
    /// end-of-text): the count the benchmark compares with other engines'.
    public var decodedTokens = 0
    /// Seconds spent in the encoder (the rest of the time is decoding): the benchmark's split.
    public var encoderSeconds = 0.0
}

public struct TranscribeOptions: Sendable {
    /// ISO code; nil detects it (multilingual models) or is English (English-only models).
    public var language: String?
    public var task: WhisperTask = .transcribe
    public var timestamps = true
    /// Segments whose no-speech probability is above this and whose average log-probability is below
    /// `logprobThreshold` are silence, and dropped (openai-whisper's rule).
    public var noSpeechThreshold: Float = 0.6
    public var logprobThreshold: Float = -1
    /// A window decodes again at the next temperature when its text compresses better than this
    /// (repetition) or its average log-probability is below `logprobThreshold` (openai-whisper's fallback).
    public var compressionRatioThreshold: Float = 2.4
    public var temperatures: [Float] = [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    /// Text given to the decoder as previous context (<|startofprev|>): names, spelling, style.
    public var initialPrompt: String?
    /// Give each window the text decoded so far as context.
    public var conditionOnPreviousText = false
    /// Word-level timestamps from the alignment heads (one more decoder pass per segment).
    public var wordTimestamps = false
    public var decoding = WhisperDecodingOptions()

    public init() {}
}

/// A loaded Whisper model with its tokenizer: audio in, transcript out, window by window as
/// openai-whisper's `transcribe` does (30 s windows, advanced by the last timestamp).
public final class WhisperEngine: Sendable {
    public let name: String
    public let folder: String
    public let model: WhisperModel
    public let tokenizer: PipelineTokenizer
    public let special: WhisperTokens
    public let multilingual: Bool
    private let mel: WhisperMel

    public init(name: String, folder: String, precision: Precision = .float32) throws {
        self.name = name
        self.folder = folder
        model = try WhisperModel(folder: folder, precision: precision)
        tokenizer = try PipelineTokenizer(tokenizerJSON: URL(fileURLWithPath: folder).appendingPathComponent("tokenizer.json"))
        special = try WhisperTokens(tokenizer)
        multilingual = model.vocabularySize >= 51865
        mel = try WhisperMel(melBins: model.melBins)
    }

    /// The log-mel of up to 30 s of 16 kHz samples as a [mels, 3000] tensor.
    package func logMel(_ samples: [Float]) -> Tensor {
        Tensor(shape: [model.melBins, mel.frameCount], storage: mel.logMel(samples))
    }

    /// Language probabilities of the first window of 16 kHz mono `samples`.
    public func detectLanguage(_ samples: [Float]) -> [(language: String, probability: Float)] {
        guard multilingual else { return [("en", 1)] }
        let audio = model.encode(logMel(Array(samples.prefix(mel.chunkSamples))))
        return WhisperDecoding(model: model, special: special).detectLanguage(audio)
    }

    /// Transcribes 16 kHz mono `samples`; `onSegment` sees each segment as soon as its window is decoded.
    /// `shouldStop` is polled every decoder step (cancellation, deadlines).
    public func transcribe(_ samples: [Float], options: TranscribeOptions, onSegment: (TranscriptSegment) -> Void = { _ in },
                           shouldStop: () -> Bool = { false }) throws -> Transcription {
        let duration = Double(samples.count) / Double(WhisperMel.sampleRate)
        guard !samples.isEmpty else {
            return Transcription(text: "", language: options.language ?? "en", languageProbability: 0, duration: 0, segments: [])
        }
        var language = options.language ?? "en"
        var languageProbability: Float = 1
        let decoder = WhisperDecoding(model: model, special: special)
        var segments: [TranscriptSegment] = []
        var contextTokens: [Int] = options.initialPrompt.map { tokenizer.encode(" " + $0.trimmingCharacters(in: .whitespaces), addSpecialTokens: false) } ?? []
        var seek = 0
        var windows = 0
        var decodedTokens = 0
        var encoderSeconds = 0.0
        let samplesPerToken = WhisperMel.sampleRate / 50  // a timestamp step is 20 ms
        while seek < samples.count && !shouldStop() {
            let window = Array(samples[seek..<min(samples.count, seek + mel.chunkSamples)])
            let windowDuration = Double(window.count) / Double(WhisperMel.sampleRate)
            // Digital silence (below -80 dBFS) is not decoded: Whisper would hallucinate a word into it.
            let energy = window.reduce(Float(0)) { $0 + $1 * $1 } / Float(max(window.count, 1))
            if energy < 1e-8 {
                seek += window.count
                continue
            }
            let encodeStart = DispatchTime.now().uptimeNanoseconds
            let audio = model.encode(logMel(window))
            encoderSeconds += Double(DispatchTime.now().uptimeNanoseconds - encodeStart) / 1e9
            windows += 1
            if multilingual && options.language == nil && seek == 0 {
                let detected = decoder.detectLanguage(audio).first ?? ("en", 1)
                (language, languageProbability) = (detected.language, detected.probability)
            }
            let start = special.prompt(language: multilingual ? language : nil, task: options.task, timestamps: options.timestamps)
            let context = special.startOfPrevious.map { [$0] + contextTokens.suffix(model.maxTokens / 2 - 1) } ?? []
            var result = WhisperDecodingResult(tokens: [], sumLogprob: 0, noSpeechProbability: 0)
            var temperature: Float = 0
            var ratio: Float = 0
            for t in options.temperatures.isEmpty ? [0] : options.temperatures {
                var decoding = options.decoding
                decoding.temperature = t
                temperature = t
                result = decoder.decode(audio, prompt: (contextTokens.isEmpty ? [] : context) + start, options: decoding, shouldStop: shouldStop)
                ratio = compressionRatio(tokenizer.decode(result.tokens.filter { $0 < special.endOfText }, skipSpecialTokens: true))
                let silent = result.noSpeechProbability > options.noSpeechThreshold
                if silent || (ratio <= options.compressionRatioThreshold && result.averageLogprob >= options.logprobThreshold) { break }
            }
            decodedTokens += result.tokens.count
            let offset = Double(seek) / Double(WhisperMel.sampleRate)
            let silent = result.noSpeechProbability > options.noSpeechThreshold && result.averageLogprob < options.logprobThreshold
            var advance = window.count
            if !silent {
                let (pieces, lastTimestamp) = split(result.tokens, windowDuration: windowDuration)
                for piece in pieces {
                    let text = tokenizer.decode(piece.tokens, skipSpecialTokens: true)
                    guard !text.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
                    var segment = TranscriptSegment(
                        id: segments.count, start: offset + piece.start, end: offset + piece.end, text: text, tokens: piece.tokens,
                        averageLogprob: result.averageLogprob, compressionRatio: ratio,
                        noSpeechProbability: result.noSpeechProbability, temperature: temperature)
                    if options.wordTimestamps {
                        segment.words = WhisperAligner(engine: self).words(
                            audio: audio, sotSequence: special.prompt(language: multilingual ? language : nil, task: options.task, timestamps: true),
                            textTokens: piece.tokens, windowFrames: window.count / WhisperMel.hopLength, offset: offset)
                    }
                    segments.append(segment)
                    onSegment(segment)
                }
                if options.conditionOnPreviousText && temperature <= 0.5 {
                    contextTokens += result.tokens.filter { $0 < special.endOfText }
                } else if options.conditionOnPreviousText {
                    contextTokens = []  // a high-temperature window is not trusted as context (openai-whisper)
                }
                // Continue from the last complete timestamp unless the window ended on a lone one.
                if let lastTimestamp, window.count == mel.chunkSamples {
                    advance = max(samplesPerToken, lastTimestamp * samplesPerToken)
                }
            }
            seek += advance
        }
        return Transcription(text: segments.map(\.text).joined(), language: language, languageProbability: languageProbability,
                             duration: duration, segments: segments, windows: windows, decodedTokens: decodedTokens, encoderSeconds: encoderSeconds)
    }

    /// Text runs between timestamp tokens; the last timestamp (in 20 ms steps) that closed a pair,
    /// when the tokens did not end on a lone timestamp (then the whole window was consumed).
    private func split(_ tokens: [Int], windowDuration: Double) -> ([(start: Double, end: Double, tokens: [Int])], Int?) {
        let begin = special.timestampBegin
        var pieces: [(Double, Double, [Int])] = []
        var start: Double?
        var text: [Int] = []
        var lastClosed: Int?
        for token in tokens {
            if token >= begin {
                let time = Double(token - begin) * 0.02
                if let s = start, !text.isEmpty {
                    pieces.append((s, time, text))
                    text = []
                    start = nil
                    lastClosed = token - begin
                } else {
                    start = time
                }
            } else {
                text.append(token)
            }
        }
        if !text.isEmpty {
            pieces.append((start ?? 0, windowDuration, text))
            lastClosed = nil  // unfinished: the next window starts after this one
        }
        let endsOnLoneTimestamp = tokens.count >= 2 && tokens[tokens.count - 1] >= begin && tokens[tokens.count - 2] < begin
        return (pieces, endsOnLoneTimestamp ? nil : lastClosed)
    }
}

/// openai-whisper's compression ratio: UTF-8 bytes / zlib-compressed bytes. Repetitive hallucinations
/// compress well, so a ratio above 2.4 marks a window to decode again.
package func compressionRatio(_ text: String) -> Float {
    let bytes = Array(text.utf8)
    guard !bytes.isEmpty else { return 0 }
    var size = compressBound(uLong(bytes.count))
    var out = [UInt8](repeating: 0, count: Int(size))
    guard compress2(&out, &size, bytes, uLong(bytes.count), 9) == Z_OK else { return 0 }
    return Float(bytes.count) / Float(size)
}
