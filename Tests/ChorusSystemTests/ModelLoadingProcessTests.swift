import ChorusAPI
import ChorusTestSupport
import ChorusWire
import Foundation
import Testing

/// LoadModel and UnloadModel on the vision and speech services, as their own processes: a model swapped
/// at run time without a restart, serving once loaded, refusing once unloaded, its memory given back.
@Suite(.serialized) struct ModelLoadingProcessTests {
    static let audio = Audio(wav: SpeechProcessTests.fixture("espeak_lights.wav"))

    @Test func speechLoadsAWhisperModelAtRunTimeAndUnloadingFreesItsMemory() async throws {
        let (process, address) = try await ChorusProcess.serve(["speech", "--port", "0"])
        let connection = try WireClient(address: address)
        let speech = SpeechClient(connection)
        defer { connection.close(); process.signal(SIGKILL) }
        await #expect(Self.code { _ = try await speech.transcribe(TranscribeRequest(audio: Self.audio)).gathered() } == .failedPrecondition)

        let before = try await speech.status(StatusRequest()).residentBytes
        let loaded = try await speech.loadModel(LoadModelRequest(name: "late-whisper", path: try RealModels.path("whisper-base")))
        #expect(loaded.models.map(\.name) == ["late-whisper"] && loaded.models.first?.kind == "whisper", "\(loaded)")
        let afterLoad = try await speech.status(StatusRequest()).residentBytes
        let text = try await speech.transcribe(TranscribeRequest(audio: Self.audio)).gathered().compactMap(\.result).first?.text ?? ""
        #expect(text.lowercased().contains("lights"), "\(text)")
        #expect(try await speech.listModels(ListModelsRequest()).models.map(\.name) == ["late-whisper"])

        #expect(try await speech.unloadModel(UnloadModelRequest(name: "late-whisper")).unloaded)
        let afterUnload = try await speech.status(StatusRequest()).residentBytes
        let grown = Int64(afterLoad) - Int64(before), kept = Int64(afterUnload) - Int64(before)
        // whisper-base is 74 M parameters: well over 200 MB as float32.
        #expect(grown > 200 << 20, "loading grew resident memory by \(grown >> 20) MiB")
        #expect(kept < grown / 4, "after unloading \(kept >> 20) MiB of the \(grown >> 20) MiB loaded are still resident")
        #expect(try await speech.listModels(ListModelsRequest()).models.isEmpty)
        await #expect(Self.code { _ = try await speech.transcribe(TranscribeRequest(audio: Self.audio)).gathered() } == .failedPrecondition)
        await #expect(Self.code { _ = try await speech.unloadModel(UnloadModelRequest(name: "late-whisper")) } == .notFound)
    }

    @Test func speechLoadsAPiperVoiceAtRunTime() async throws {
        let (process, address) = try await ChorusProcess.serve(["speech", "--port", "0"])
        let connection = try WireClient(address: address)
        let speech = SpeechClient(connection)
        defer { connection.close(); process.signal(SIGKILL) }
        let loaded = try await speech.loadModel(LoadModelRequest(path: try RealModels.path("piper")))
        #expect(loaded.models.map(\.kind) == ["piper"], "\(loaded)")
        let chunks = try await speech.synthesize(SynthesizeRequest(text: "Hello.")).gathered()
        #expect(chunks.contains { !$0.data.isEmpty }, "\(chunks.count) chunks")
        // A path that holds no speech model, and a kind the service does not load, are refused clearly.
        await #expect(Self.code { _ = try await speech.loadModel(LoadModelRequest(path: try RealModels.path("terrain"))) } == .invalidArgument)
        await #expect(Self.code { _ = try await speech.loadModel(LoadModelRequest(path: try RealModels.path("piper"), kind: "clip")) } == .invalidArgument)
    }

    @Test func visionLoadsAndUnloadsCLIPAtRunTime() async throws {
        let (process, address) = try await ChorusProcess.serve(["vision", "--port", "0"])
        let connection = try WireClient(address: address)
        let vision = VisionClient(connection)
        defer { connection.close(); process.signal(SIGKILL) }
        let request = EmbedTextsRequest(texts: ["a photo of a cat"])
        await #expect(Self.code { _ = try await vision.embedTexts(request) } == .failedPrecondition)
        let loaded = try await vision.loadModel(LoadModelRequest(name: "clip-late", path: VisionProcessTests.clipFolder.path))
        #expect(loaded.models.map(\.name) == ["clip-late"] && loaded.models.first?.kind == "clip", "\(loaded)")
        let answer = try await vision.embedTexts(request)
        #expect(answer.model == "clip-late" && answer.embeddings.count == 1 && answer.dimension > 0)
        #expect(try await vision.unloadModel(UnloadModelRequest(name: "clip-late")).unloaded)
        await #expect(Self.code { _ = try await vision.embedTexts(request) } == .failedPrecondition)
        await #expect(Self.code { _ = try await vision.loadModel(LoadModelRequest(path: "/nonexistent/clip")) } == .notFound)
    }

    static func code(_ body: () async throws -> Void) async -> StatusCode? {
        do {
            try await body()
            return .ok
        } catch {
            return WireStatus.from(error).code
        }
    }
}

extension ResponseStream {
    /// Every answer of the stream, in order.
    func gathered() async throws -> [Element] {
        var answers: [Element] = []
        for try await answer in self { answers.append(answer) }
        return answers
    }
}
