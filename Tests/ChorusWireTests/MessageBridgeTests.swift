import ChorusAPI
import ChorusWire
import Foundation
import Testing

/// The generated Swift types survive protobuf-c encoding and JSON unchanged.
@Suite struct MessageBridgeTests {
    static let request = TranscribeRequest(
        audio: Audio(wav: Data([0x52, 0x49, 0x46, 0x46, 0, 1]), sampleRate: 16000, channels: 1),
        model: "tiny.en", language: "en", format: .srt, beamSize: 5, temperature: 0.2, initialPrompt: "Glossary: Chorus",
        wordTimestamps: true, noSpeechThreshold: 0.6)

    @Test func nestedMessagesEnumsAndBytesRoundTrip() throws {
        let bytes = try Self.request.wireBytes()
        #expect(try TranscribeRequest(wireBytes: bytes) == Self.request)
    }

    @Test func repeatedFieldsOfEveryKindRoundTrip() throws {
        let result = TranscribeResult(text: "hi", segments: [
            Segment(id: 0, start: 0, end: 1.5, text: " hi", tokens: [50363, 1, -2], words: [Word(word: "hi", start: 0, end: 1, probability: 0.9)]),
            Segment(id: 1, start: 1.5, end: 3, text: " there"),
        ], format: .verboseJson)
        #expect(try TranscribeResult(wireBytes: result.wireBytes()) == result)
        let embeddings = EmbeddingsResponse(model: "clip", dimension: 2, embeddings: [Embedding(values: [0.5, -0.25]), Embedding(values: [1, 0])])
        #expect(try EmbeddingsResponse(wireBytes: embeddings.wireBytes()) == embeddings)
        let images = EmbedImagesRequest(images: [EncodedImage(data: Data([1, 2])), EncodedImage(data: Data())])
        #expect(try EmbedImagesRequest(wireBytes: images.wireBytes()) == images)
        let labels = ClassifyRequest(labels: ["cat", "", "dog"], templates: ["a photo of a {}."])
        #expect(try ClassifyRequest(wireBytes: labels.wireBytes()) == labels)
        let tensor = Tensor(shape: [2, 3], dtype: .float32, data: Data(count: 24))
        #expect(try Tensor(wireBytes: tensor.wireBytes()) == tensor)
    }

    /// Bytes fields from 4 KiB on are lent to protobuf-c when packing and taken over from it when
    /// unpacking (one copy each way); below that they are copied. Both round-trip, singular, repeated and
    /// nested, through the array and the buffer forms.
    @Test(arguments: [0, 1, 4095, 4096, 1 << 20])
    func bytesFieldsOfEverySizeRoundTrip(size: Int) throws {
        let bytes = Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ size) })
        let echo = EchoRequest(payload: bytes, count: 2)
        #expect(try EchoRequest(wireBuffer: echo.wireBuffer()) == echo)
        #expect(try EchoRequest(wireBytes: echo.wireBytes()) == echo)
        #expect(try echo.wireBuffer().readableBytesView.elementsEqual(echo.wireBytes()))
        let compose = ComposeRequest(recipe: "r", images: [EncodedImage(data: bytes), EncodedImage(data: Data([9]))],
                                     videos: [bytes, Data(), Data(bytes.reversed())])
        let decoded = try ComposeRequest(wireBuffer: compose.wireBuffer())
        #expect(decoded == compose)
        // The taken-over bytes stay good after the message they came in is gone.
        var copy = decoded.videos[2]
        copy.append(1)
        #expect(copy.dropLast() == Data(bytes.reversed()))
    }

    @Test func allDefaultsEncodeToNothing() throws {
        #expect(try TranscribeRequest().wireBytes().isEmpty)
        #expect(try TranscribeRequest(wireBytes: [UInt8]()) == TranscribeRequest())
    }

    @Test func malformedBytesAreInvalidArgument() throws {
        #expect {
            _ = try TranscribeRequest(wireBytes: [0x0A, 0xFF, 0x01])  // field 1, length 255, 1 byte present
        } throws: { error in
            (error as? WireStatus)?.code == .invalidArgument && (error as? WireStatus)?.message.contains("TranscribeRequest") == true
        }
    }

    @Test func jsonUsesProtoNamesAndEnumNames() throws {
        let json = try JSONEncoder().encode(Self.request)
        let object = try JSONSerialization.jsonObject(with: json) as! [String: Any]
        #expect(object["beam_size"] as? Int == 5)
        #expect(object["format"] as? String == "SRT")
        #expect(try JSONDecoder().decode(TranscribeRequest.self, from: json) == Self.request)
        let partial = try JSONDecoder().decode(TranscribeRequest.self, from: Data(#"{"format": "vtt", "beam_size": 2}"#.utf8))
        #expect(partial.format == .vtt && partial.beamSize == 2 && partial.model == "")
    }

    @Test func anyMethodBridgesJSON() throws {
        let method = try #require(ChorusMethods.all["/chorus.speech.v1.Speech/Echo"])
        let bytes = try method.encodeRequest(Data(#"{"payload": "aGk=", "delay_ms": 3}"#.utf8))
        #expect(try EchoRequest(wireBytes: bytes) == EchoRequest(payload: Data("hi".utf8), delayMs: 3))
        #expect(throws: WireStatus.self) { try method.encodeRequest(Data(#"{"delay_ms": "soon"}"#.utf8)) }
        #expect(ChorusMethods.all.count == 11 + 19 + 14 + 5)  // diffusion, vision, speech, gateway
    }
}
