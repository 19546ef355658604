import ChorusAPI
import ChorusInput
import ChorusMedia
import ChorusServiceKit
import ChorusTensor
import ChorusText
import ChorusWire
import Foundation
import Logging
import ChorusWhisper
import ChorusVITS

/// The Speech RPC handlers: a thin adapter between the wire and the Whisper and VITS engines.
public struct SpeechServer: SpeechHandler, CommonServiceHandler, ModelLoadingHandler {
    public struct Settings: Sendable {
        public var maxAudioSeconds: Double
        /// Beams when a request leaves beam_size at 0.
        public var beamSize: Int
        /// Longest text Synthesize accepts.
        public var maxTextCharacters: Int
        /// The arithmetic of Whisper's linears (int8 falls back to float32, logged, without AVX-512 VNNI).
        public var precision: Precision

        public init(maxAudioSeconds: Double = 3600, beamSize: Int = 5, maxTextCharacters: Int = 5000, precision: Precision = .float32) {
            self.maxAudioSeconds = maxAudioSeconds
            self.beamSize = beamSize
            self.maxTextCharacters = maxTextCharacters
            self.precision = precision
        }
    }

    public let runtime: ServiceRuntime
    let models: SpeechModels
    let settings: Settings
    public let compute = ComputeQueue()
    public var registry: ModelRegistry { models.registry }

    /// Loads every model under the runtime's --models folder.
    public init(runtime: ServiceRuntime, settings: Settings = .init()) throws {
        self.runtime = runtime
        self.settings = settings
        let (precision, note) = Precision.available(settings.precision)
        if let note { runtime.logger.warning("--precision \(note)") }
        models = try SpeechModels.load(from: runtime.options.modelsDirectory, runtime: runtime, precision: precision)
        // FFmpeg's complaints are about a client's file, not the server: logged quietly, never on stderr.
        let logger = runtime.logger
        FFmpegLog.route { level, line in logger.log(level: level == .error ? .info : .debug, "ffmpeg: \(line)") }
    }

    /// With models already loaded (tests, benchmarks).
    init(runtime: ServiceRuntime, settings: Settings, models: SpeechModels) {
        self.runtime = runtime
        self.settings = settings
        self.models = models
    }

    /// The Whisper engine a request names, or the default one.
    private func whisper(_ name: String, multilingual: Bool = false) throws -> WhisperEngine {
        if !name.isEmpty {
            guard let engine = models.whisper[name] else {
                throw WireStatus(.notFound, "no Whisper model named '\(name)'; loaded: \(models.whisper.keys.sorted().joined(separator: ", "))")
            }
            return engine
        }
        if multilingual, let engine = models.whisper.values.sorted(by: { $0.name < $1.name }).first(where: \.multilingual) {
            return engine
        }
        guard let name = models.defaultWhisper, let engine = models.whisper[name] else {
            throw runtime.missingModel("Whisper", hint: "start it with --models DIR holding a Whisper model (scripts/fetch-models puts tiny.en under models/)")
        }
        return engine
    }

    public func transcribe(_ request: TranscribeRequest, context: CallContext, responses: ResponseWriter<TranscribeEvent>) async throws {
        let result = try await run(request, task: .transcribe) { segment in
            try await responses.write(TranscribeEvent(segment: segment))
        }
        try await responses.write(TranscribeEvent(result: result))
    }

    public func translate(_ request: TranscribeRequest, context: CallContext) async throws -> TranscribeResult {
        try await run(request, task: .translate) { _ in }
    }

    public func transcribeUpload(_ requests: RequestStream<AudioChunk>, context: CallContext) async throws -> TranscribeResult {
        var options: TranscribeRequest?
        var pcm = Data()
        var wav = Data()
        var rate: UInt32 = 0, channels: UInt32 = 1
        for try await chunk in requests {
            if let given = chunk.options { options = given }  // the last given win: the HTTP front resends them with fields that follow the file
            switch chunk.format {
            case .wav: wav.append(chunk.data)
            default:
                pcm.append(chunk.data)
                if chunk.sampleRate > 0 { rate = chunk.sampleRate }
                if chunk.channels > 0 { channels = chunk.channels }
            }
            if Double(pcm.count + wav.count) > settings.maxAudioSeconds * 48000 * 8 {
                throw WireStatus(.invalidArgument, "the upload exceeds --max-audio-seconds \(Int(settings.maxAudioSeconds))")
            }
        }
        var request = options ?? TranscribeRequest()
        request.audio = wav.isEmpty ? Audio(pcmF32: pcm, sampleRate: rate, channels: channels) : Audio(wav: wav)
        return try await run(request, task: .transcribe) { _ in }
    }

    public func detectLanguage(_ request: DetectLanguageRequest, context: CallContext) async throws -> DetectLanguageResponse {
        let engine = try whisper(request.model, multilingual: true)
        let topK = try Checked.integer(request.topK, "top_k", in: 1...200, zeroMeans: 5)
        let input = AudioInput(maxSeconds: settings.maxAudioSeconds)
        try runtime.admit(needing: Self.workingBytes(request.audio), for: "detecting the language of \(Self.describe(request.audio))")
        // Decoding and resampling run on a compute thread too: an hour of 48 kHz audio is seconds of work.
        let languages = try await runtime.limiter.run {
            try await compute.run { _ in
                let samples = try input.samples(request.audio)
                guard !samples.isEmpty else { throw WireStatus(.invalidArgument, "the request has no audio samples") }
                return engine.detectLanguage(samples)
            }
        }
        let top = Array(languages.prefix(topK))
        return DetectLanguageResponse(language: top.first?.language ?? "", probability: top.first?.probability ?? 0,
                                      languages: top.map { LanguageProbability(language: $0.language, probability: $0.probability) })
    }

    /// About what a transcription of `audio` holds at once: its samples as float32 in a few copies (decoded,
    /// resampled, log-mel) and a window's activations.
    static func workingBytes(_ audio: Audio?) -> Int {
        let bytes = (audio?.wav.count ?? 0) + (audio?.pcmF32.count ?? 0)
        return bytes.multipliedReportingOverflow(by: 4).overflow ? .max : bytes * 4 + (64 << 20)
    }

    static func describe(_ audio: Audio?) -> String {
        "\(((audio?.wav.count ?? 0) + (audio?.pcmF32.count ?? 0)) >> 10) KiB of audio"
    }

    /// Decodes on a compute thread, streaming segments to `onSegment` as windows finish.
    private func run(_ request: TranscribeRequest, task: WhisperTask,
                     onSegment: @escaping @Sendable (Segment) async throws -> Void) async throws -> TranscribeResult {
        let engine = try whisper(request.model, multilingual: task == .translate)
        if task == .translate && !engine.multilingual {
            throw WireStatus(.invalidArgument, "model '\(engine.name)' is English-only and cannot translate; name a multilingual model")
        }
        if !request.language.isEmpty && engine.multilingual && engine.special.languages[request.language] == nil {
            throw WireStatus(.invalidArgument, "unknown language '\(request.language)'")
        }
        let input = AudioInput(maxSeconds: settings.maxAudioSeconds)
        try runtime.admit(needing: Self.workingBytes(request.audio), for: "transcribing \(Self.describe(request.audio))")
        var options = TranscribeOptions()
        options.language = request.language.isEmpty ? nil : request.language
        options.task = task
        options.timestamps = !request.withoutTimestamps
        if request.noSpeechThreshold > 0 { options.noSpeechThreshold = request.noSpeechThreshold }
        if request.logprobThreshold != 0 { options.logprobThreshold = request.logprobThreshold }
        if request.compressionRatioThreshold > 0 { options.compressionRatioThreshold = request.compressionRatioThreshold }
        guard (0...1).contains(request.temperature) else {
            throw WireStatus(.invalidArgument, "temperature \(request.temperature) is outside 0 ... 1")
        }
        // Negative turns the fallback off; a tiny step would make millions of temperatures to try.
        let increment = request.temperatureIncrement == 0 ? 0.2 : request.temperatureIncrement
        guard increment.isFinite, increment < 0 || increment >= 0.01 else {
            throw WireStatus(.invalidArgument, "temperature_increment \(request.temperatureIncrement) must be at least 0.01, or negative for no fallback")
        }
        options.temperatures = increment < 0 ? [request.temperature]
            : Array(stride(from: request.temperature, through: 1.0 + 1e-6, by: increment)).map { min($0, 1) }
        options.decoding.beamSize = try Checked.integer(request.beamSize, "beam_size", in: 1...16, zeroMeans: settings.beamSize)
        options.decoding.bestOf = try Checked.integer(request.bestOf, "best_of", in: 1...16, zeroMeans: 5)
        options.decoding.seed = request.seed
        options.initialPrompt = request.initialPrompt.isEmpty ? nil : request.initialPrompt
        options.conditionOnPreviousText = request.conditionOnPreviousText
        options.wordTimestamps = request.wordTimestamps

        let settled = options
        let (segments, continuation) = AsyncStream<TranscriptSegment>.makeStream()
        let work = Task {
            // Finished however the work ends: refused by a full queue, failed decoding the audio, or done.
            defer { continuation.finish() }
            return try await runtime.limiter.run {
                try await compute.run { flag in
                    let samples = try input.samples(request.audio)
                    return try engine.transcribe(samples, options: settled, onSegment: { continuation.yield($0) },
                                                 shouldStop: { flag.isCancelled })
                }
            }
        }
        do {
            for await segment in segments { try await onSegment(segment.wire) }
        } catch {
            work.cancel()
            throw error
        }
        let transcription = try await withTaskCancellationHandler { try await work.value } onCancel: { work.cancel() }
        try Task.checkCancellation()
        let format = request.format == .unspecified ? TranscriptFormat.json : request.format
        return TranscribeResult(
            text: transcription.text, language: transcription.language, languageProbability: transcription.languageProbability,
            durationSeconds: transcription.duration, segments: transcription.segments.map(\.wire), format: format,
            formatted: Self.write(transcription, format, task: task), model: engine.name)
    }

    static func write(_ t: Transcription, _ format: TranscriptFormat, task: WhisperTask = .transcribe) -> String {
        switch format {
        case .text: return TranscriptWriters.text(t)
        case .srt: return TranscriptWriters.srt(t)
        case .vtt: return TranscriptWriters.vtt(t)
        case .verboseJson: return TranscriptWriters.verboseJSON(t, task: task == .translate ? "translate" : "transcribe")
        case .json, .unspecified: return TranscriptWriters.json(t)
        }
    }
}

extension TranscriptSegment {
    var wire: Segment {
        Segment(id: UInt32(id), start: start, end: end, text: text, tokens: tokens.map(Int32.init), avgLogprob: averageLogprob,
                compressionRatio: compressionRatio, noSpeechProb: noSpeechProbability, temperature: temperature,
                words: words.map { Word(word: $0.word, start: $0.start, end: $0.end, probability: $0.probability) })
    }
}
