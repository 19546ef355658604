import ChorusAPI
import ChorusServiceKit
import ChorusWire

/// The Speech RPC handlers: a thin adapter between the wire and the Whisper and VITS engines.
/// Until the engines land, model methods answer FAILED_PRECONDITION naming what is missing.
public struct SpeechServer: SpeechHandler, CommonServiceHandler {
    public let runtime: ServiceRuntime

    public init(runtime: ServiceRuntime) {
        self.runtime = runtime
    }

    private var noWhisper: WireStatus {
        runtime.missingModel("Whisper", hint: "start it with --models DIR holding a Whisper model (scripts/fetch-models puts tiny.en under models/)")
    }

    private var noVoice: WireStatus {
        runtime.missingModel("VITS/Piper voice", hint: "start it with --models DIR holding a Piper voice (scripts/fetch-models puts en_US-joe-medium under models/)")
    }

    public func transcribe(_ request: TranscribeRequest, context: CallContext, responses: ResponseWriter<TranscribeEvent>) async throws {
        throw noWhisper
    }

    public func transcribeUpload(_ requests: RequestStream<AudioChunk>, context: CallContext) async throws -> TranscribeResult {
        throw noWhisper
    }

    public func translate(_ request: TranscribeRequest, context: CallContext) async throws -> TranscribeResult {
        throw noWhisper
    }

    public func detectLanguage(_ request: DetectLanguageRequest, context: CallContext) async throws -> DetectLanguageResponse {
        throw noWhisper
    }

    public func synthesize(_ request: SynthesizeRequest, context: CallContext, responses: ResponseWriter<AudioChunk>) async throws {
        throw noVoice
    }

    public func listVoices(_ request: ListVoicesRequest, context: CallContext) async throws -> ListVoicesResponse {
        ListVoicesResponse(voices: [])
    }
}
