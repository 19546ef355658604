import ChorusAPI
import ChorusServiceKit
import ChorusWire

/// The Diffusion RPC handlers: a thin adapter between the wire and the diffusion pipelines.
/// Until the engines land, model methods answer FAILED_PRECONDITION naming what is missing.
public struct DiffusionServer: DiffusionHandler, CommonServiceHandler {
    public let runtime: ServiceRuntime

    public init(runtime: ServiceRuntime) {
        self.runtime = runtime
    }

    private var noModel: WireStatus {
        runtime.missingModel("diffusion", hint: "start it with --models DIR holding a diffusers Stable Diffusion folder or the terrain consistency UNet (scripts/fetch-models)")
    }

    public func textToImage(_ request: TextToImageRequest, context: CallContext, responses: ResponseWriter<DiffusionEvent>) async throws {
        throw noModel
    }

    public func imageToImage(_ request: ImageToImageRequest, context: CallContext, responses: ResponseWriter<DiffusionEvent>) async throws {
        throw noModel
    }

    public func loadModel(_ request: LoadModelRequest, context: CallContext) async throws -> LoadModelResponse {
        throw WireStatus(.unimplemented, "loading '\(request.path)' needs the diffusion engines, which this build does not have yet")
    }

    public func unloadModel(_ request: UnloadModelRequest, context: CallContext) async throws -> UnloadModelResponse {
        guard runtime.removeModel(named: request.name) else {
            throw WireStatus(.notFound, "no model named '\(request.name)' is loaded; ListModels shows what is")
        }
        return UnloadModelResponse(unloaded: true)
    }
}
