import ChorusAPI
import ChorusServiceKit
import ChorusWire

/// The Vision RPC handlers: a thin adapter between the wire and the CLIP and LLaVA engines.
/// Until the engines land, model methods answer FAILED_PRECONDITION naming what is missing.
public struct VisionServer: VisionHandler, CommonServiceHandler {
    public let runtime: ServiceRuntime

    public init(runtime: ServiceRuntime) {
        self.runtime = runtime
    }

    private var noCLIP: WireStatus {
        runtime.missingModel("CLIP", hint: "start it with --models DIR holding a Hugging Face CLIPModel folder")
    }

    private var noLLaVA: WireStatus {
        runtime.missingModel("LLaVA", hint: "start it with --models DIR holding a Hugging Face LlavaForConditionalGeneration folder")
    }

    public func embedImages(_ request: EmbedImagesRequest, context: CallContext) async throws -> EmbeddingsResponse { throw noCLIP }
    public func embedTexts(_ request: EmbedTextsRequest, context: CallContext) async throws -> EmbeddingsResponse { throw noCLIP }
    public func classify(_ request: ClassifyRequest, context: CallContext) async throws -> ClassifyResponse { throw noCLIP }
    public func indexAdd(_ request: IndexAddRequest, context: CallContext) async throws -> IndexAddResponse { throw noCLIP }
    public func indexSearch(_ request: IndexSearchRequest, context: CallContext) async throws -> IndexSearchResponse { throw noCLIP }
    public func indexDelete(_ request: IndexDeleteRequest, context: CallContext) async throws -> IndexDeleteResponse { throw noCLIP }
    public func caption(_ request: CaptionRequest, context: CallContext) async throws -> TextResponse { throw noLLaVA }
    public func ask(_ request: AskRequest, context: CallContext) async throws -> TextResponse { throw noLLaVA }

    public func chat(_ request: ChatRequest, context: CallContext, responses: ResponseWriter<ChatEvent>) async throws {
        throw noLLaVA
    }
}
