import ChorusAPI
import ChorusMedia
import ChorusServiceKit
import ChorusWire
import Foundation
import ChorusVITS

/// Synthesize: text → one audio chunk per sentence, so playback can start before the whole text is done.
extension SpeechServer {
    /// The voice a request names, or the default one.
    func voice(_ name: String) throws -> VitsVoice {
        if !name.isEmpty {
            guard let voice = models.voices[name] else {
                throw WireStatus(.notFound, "no voice named '\(name)'; loaded: \(models.voices.keys.sorted().joined(separator: ", "))")
            }
            return voice
        }
        guard let name = models.defaultVoice, let voice = models.voices[name] else {
            throw runtime.missingModel("VITS/Piper voice", hint: "start it with --models DIR holding a Piper voice (scripts/fetch-models puts en_US-joe-medium under models/piper)")
        }
        return voice
    }

    /// The request's settings checked, with the voice's defaults filled in.
    struct SynthesisPlan: Sendable {
        var sentences: [String]
        var speaker: Int?
        var scales: VitsVoice.Scales
        var silence: Int
        var outputRate: Int
        var format: AudioFormat
        var seed: UInt64
    }

    func plan(_ request: SynthesizeRequest, voice: VitsVoice) throws -> SynthesisPlan {
        let text = request.text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { throw WireStatus(.invalidArgument, "the request has no text to speak") }
        guard request.text.count <= settings.maxTextCharacters else {
            throw WireStatus(.invalidArgument, "the text has \(request.text.count) characters; the limit is \(settings.maxTextCharacters) (--max-text-chars)")
        }
        if voice.speakers > 1 {
            guard (0..<voice.speakers).contains(Int(request.speakerId)) else {
                throw WireStatus(.invalidArgument, "speaker_id \(request.speakerId) is outside 0 ... \(voice.speakers - 1) for voice '\(voice.name)'")
            }
        } else if request.speakerId != 0 {
            throw WireStatus(.invalidArgument, "voice '\(voice.name)' has one speaker; speaker_id must be 0")
        }
        var scales = voice.defaults
        if request.lengthScale != 0 { scales.lengthScale = request.lengthScale }
        if request.exactScales || request.noiseScale != 0 { scales.noise = request.noiseScale }
        if request.exactScales || request.noiseW != 0 { scales.noiseW = request.noiseW }
        guard scales.lengthScale > 0.05 && scales.lengthScale <= 20 else {
            throw WireStatus(.invalidArgument, "length_scale \(scales.lengthScale) is outside (0.05, 20]")
        }
        guard (0...5).contains(scales.noise), (0...5).contains(scales.noiseW) else {
            throw WireStatus(.invalidArgument, "noise_scale and noise_w go from 0 to 5 (got \(scales.noise), \(scales.noiseW))")
        }
        guard (0...10).contains(request.sentenceSilence) else {
            throw WireStatus(.invalidArgument, "sentence_silence \(request.sentenceSilence) s is outside 0 ... 10")
        }
        let rate = request.sampleRate == 0 ? voice.sampleRate : Int(request.sampleRate)
        guard (4000...192_000).contains(rate) else { throw WireStatus(.invalidArgument, "sample_rate \(rate) is outside 4000 ... 192000") }
        return SynthesisPlan(sentences: EspeakPhonemizer.sentences(text), speaker: voice.speakers > 1 ? Int(request.speakerId) : nil,
                             scales: scales, silence: Int(request.sentenceSilence * Float(voice.sampleRate)), outputRate: rate,
                             format: request.format == .unspecified ? .wav : request.format, seed: request.seed)
    }

    public func synthesize(_ request: SynthesizeRequest, context: CallContext, responses: ResponseWriter<AudioChunk>) async throws {
        let voice = try voice(request.voice)
        let plan = try plan(request, voice: voice)
        let resampler: SincResampler?
        do {
            resampler = plan.outputRate == voice.sampleRate ? nil : try SincResampler(inputRate: voice.sampleRate, outputRate: plan.outputRate)
        } catch let error as MediaError {
            throw WireStatus(.invalidArgument, "sample_rate \(plan.outputRate): \(error); 8000, 16000, 22050, 24000, 44100 or 48000 work")
        }
        // A sentence at a time: the text's length bounds the audio, a few seconds per hundred characters.
        try runtime.admit(needing: request.text.utf8.count * (16 << 10) + (32 << 20), for: "speaking \(request.text.count) characters")
        try await runtime.limiter.run {
            var sequence: UInt32 = 0
            var spoken = 0
            var unsayable = Set<Character>()
            for (index, sentence) in plan.sentences.enumerated() {
                try Task.checkCancellation()
                let (audio, missing) = try await compute.run { flag -> ([Float]?, Set<Character>) in
                    let (ids, missing, phonemes) = try Self.frontEnd(voice, sentence)
                    // Punctuation alone, or nothing at all: nothing the voice can say.
                    guard !ids.isEmpty, phonemes.unicodeScalars.contains(where: { CharacterSet.letters.contains($0) }) else { return (nil, missing) }
                    let noise = VitsModel.Noise(scale: plan.scales.noise, durationScale: plan.scales.noiseW,
                                                lengthScale: plan.scales.lengthScale, seed: plan.seed &+ UInt64(index))
                    let output = voice.model.synthesize(ids, speaker: plan.speaker, noise: noise, cancelled: { flag.isCancelled })
                    return (output.waveform + [Float](repeating: 0, count: plan.silence), missing)
                }
                unsayable.formUnion(missing)
                guard let audio else { continue }
                try Task.checkCancellation()
                let samples = resampler.map { $0.resample(audio) } ?? audio
                spoken += 1
                try await responses.write(AudioChunk(sequence: sequence, data: try Self.encode(samples, rate: plan.outputRate, format: plan.format),
                                                     format: plan.format, sampleRate: UInt32(plan.outputRate), channels: 1, text: sentence,
                                                     last: index == plan.sentences.count - 1))
                sequence += 1
            }
            guard spoken > 0 else {
                let detail = unsayable.isEmpty ? "" : " (no phonemes for: \(String(unsayable.sorted()).prefix(40)))"
                throw WireStatus(.invalidArgument, "voice '\(voice.name)' found nothing to pronounce in the text\(detail)")
            }
            if !unsayable.isEmpty {
                runtime.logger.notice("voice '\(voice.name)' skipped characters it has no phonemes for: \(String(unsayable.sorted()).prefix(40))")
            }
        }
    }

    private static func frontEnd(_ voice: VitsVoice, _ sentence: String) throws -> (ids: [Int], missing: Set<Character>, phonemes: String) {
        do {
            return try voice.ids(sentence)
        } catch let failure as EspeakPhonemizer.Failure {
            throw WireStatus(.failedPrecondition, "\(failure)")
        }
    }

    static func encode(_ samples: [Float], rate: Int, format: AudioFormat) throws -> Data {
        switch format {
        case .pcmF32:
            var data = Data(capacity: samples.count * 4)
            for s in samples { withUnsafeBytes(of: s.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
            return data
        default:
            return Data(try WAVCodec.encode(AudioSamples(sampleRate: rate, mono: samples.map { min(max($0, -1), 1) })))
        }
    }

    public func listVoices(_ request: ListVoicesRequest, context: CallContext) async throws -> ListVoicesResponse {
        ListVoicesResponse(voices: models.voices.values.sorted { $0.name < $1.name }.map {
            Voice(name: $0.name, language: $0.language, sampleRate: UInt32($0.sampleRate), speakers: UInt32($0.speakers), modelKind: $0.kind.rawValue)
        })
    }
}
