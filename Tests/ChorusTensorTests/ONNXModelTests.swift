import ChorusTensor
import ChorusTestSupport
import Foundation
import Testing

@Suite struct ONNXModelTests {
    static func fixture(_ name: String) -> String {
        Bundle.module.path(forResource: name, ofType: "onnx", inDirectory: "Fixtures")!
    }

    @Test func readsInitializersFromEveryStorageAndNodesWithAttributes() throws {
        let model = try ONNXModel(path: Self.fixture("tiny"))
        #expect(model.producer == "chorus-fixtures" && model.opsetVersion == 17)
        #expect(try model.initializer("conv.weight") == Tensor(shape: [2, 1, 3], storage: [0, 0.25, 0.5, 0.75, 1, 1.25]))
        #expect(try model.initializer("onnx::Conv_7").storage == [0.5, -1.5])
        #expect(try model.initializer("half").storage == [1.5, -2])
        #expect(try model.initializer("double").storage == [0.25, 8])
        #expect(model.integerInitializers["shape"] == [1, -1, 4])
        #expect(model.inputs == ["x"] && model.outputs == ["z"])
        let conv = try #require(model.nodes.first { $0.opType == "Conv" })
        #expect(conv.attributes["kernel_shape"] == .ints([3]))
        #expect(conv.attributes["pads"] == .ints([1, 1]))
        #expect(conv.attributes["group"] == .int(1))
        #expect(model.nodes.first { $0.opType == "Constant" }?.attributes["value"] == .tensor(Tensor(shape: [1], storage: [3.25])))
        // An unnamed bias leads to its layer through the node that consumes it.
        let users = model.consumers(of: "onnx::Conv_7")
        #expect(users.count == 1 && users[0].node.name == "/conv/Conv" && users[0].inputIndex == 2)
    }

    @Test func rawDataOfTheWrongSizeIsRefused() throws {
        #expect {
            _ = try ONNXModel(path: Self.fixture("bad_raw_size"))
        } throws: { error in
            (error as? WeightFileError)?.message.contains("has 12 bytes of raw_data; shape [4] needs 16") == true
        }
    }

    @Test func garbageIsNotAnONNXModel() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("garbage-\(UUID().uuidString).onnx")
        try Data([0x0A, 0xFF, 0xFF, 0xFF, 0x0F, 1, 2]).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        #expect {
            _ = try ONNXModel(path: url.path)
        } throws: { error in
            (error as? WeightFileError)?.message.contains("is not an ONNX model") == true
        }
    }

    @Test func loadsThePiperVoice() throws {
        let model = try ONNXModel(path: RealModels.path("piper/en_US-joe-medium.onnx"))
        #expect(model.irVersion == 8 && model.opsetVersion == 15 && model.producer == "pytorch")
        #expect(model.initializers.count + model.integerInitializers.count == 401)
        #expect(model.nodes.count == 2755)
        #expect(model.inputs == ["input", "input_lengths", "scales"] && model.outputs == ["output"])
        let speakers = try model.initializer("sid")
        #expect(speakers.shape == [256, 192])
        #expect(Array(speakers.storage.prefix(2)) == [0.004631381016224623, -0.002979784971103072])
        #expect(abs(speakers.storage.reduce(0) { $0 + Double($1) } - 7.35867623362077) < 1e-4)
        let conv = try #require(model.consumers(of: "enc_p.encoder.attn_layers.0.conv_q.weight").first)
        #expect(conv.node.opType == "Conv" && conv.inputIndex == 1)
        #expect(conv.node.attributes["kernel_shape"] == .ints([1]))
    }

    @Test func loadsTheTerrainUNet() throws {
        let model = try ONNXModel(path: RealModels.path("terrain/terrain_consistency_unet_difficulty100.onnx"))
        #expect(model.irVersion == 10 && model.opsetVersion == 18)
        #expect(model.initializers.count + model.integerInitializers.count == 815)
        #expect(model.nodes.count == 2103)
        #expect(model.inputs == ["noisy", "sigma", "difficulty"] && model.outputs == ["denoised"])
        let embed = try model.initializer("network.time_embed.0.weight")
        #expect(embed.shape == [128, 32])
        #expect(abs(embed.storage.reduce(0) { $0 + Double($1) } - -513.7469168798634) < 1e-3)
    }
}
