import ChorusAPI
import ChorusTestSupport
import ChorusWire
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// Requests a hostile client sends, over real processes: numbers that trapped Swift conversions in the
/// gateway (`"steps": -1` killed it for every user) and in the services. Each must get a precise 400 /
/// INVALID_ARGUMENT naming the field, and the process must still be the same one afterwards.
@Suite(.serialized) struct HostileRequestTests {
    struct Stack {
        let diffusion: ChorusProcess
        let gateway: ChorusProcess
        let http: String

        func stop() {
            gateway.signal(SIGKILL)
            diffusion.signal(SIGKILL)
        }
    }

    /// The terrain model behind a gateway; chat, audio and embeddings have no service, so their fields
    /// are checked before any call leaves the gateway.
    static func start() async throws -> Stack {
        _ = try RealModels.path("terrain/terrain_consistency_unet_difficulty100.onnx")
        let (diffusion, address) = try await ChorusProcess.serve(["diffusion", "--port", "0", "--models", RealModels.root.path])
        let (gateway, _) = try await ChorusProcess.serve(["gateway", "--port", "0", "--diffusion", address, "--http-port", "0"])
        let line = try await gateway.waitForLine(containing: "OpenAI-compatible HTTP on http://")
        let http = String(line[line.range(of: "http://")!.lowerBound...].split(separator: " ").first!)
        return Stack(diffusion: diffusion, gateway: gateway, http: http)
    }

    /// Posts a raw body (JSON text, so that 1e999 and -0 reach the parser as the client wrote them).
    static func post(_ http: String, _ path: String, _ body: String, contentType: String = "application/json") async throws -> (Int, [String: Any]) {
        var request = URLRequest(url: URL(string: http + path)!)
        request.httpMethod = "POST"
        request.httpBody = Data(body.utf8)
        request.setValue(contentType, forHTTPHeaderField: "Content-Type")
        let (data, response) = try await URLSession.shared.data(for: request)
        let object = (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? ["raw": String(decoding: data, as: UTF8.self)]
        return ((response as! HTTPURLResponse).statusCode, object)
    }

    static func multipart(_ fields: [(String, String)], file: (name: String, data: Data)) -> (String, String) {
        let boundary = "chorus-hostile-\(UUID().uuidString)"
        var body = ""
        for (name, value) in fields {
            body += "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n"
        }
        body += "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(file.name)\"; filename=\"x\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        body += String(decoding: file.data, as: UTF8.self) + "\r\n--\(boundary)--\r\n"
        return (body, "multipart/form-data; boundary=\(boundary)")
    }

    @Test func numbersThatCrashedTheGatewayGet400NamingTheField() async throws {
        let stack = try await Self.start()
        defer { stack.stop() }
        let pid = stack.gateway.pid
        // (route, body, the field the error must name): the five shapes of the report (negative,
        // fractional, huge, infinite, NaN-producing) on every numeric field of every JSON route.
        let images = "/v1/images/generations"
        var cases: [(String, String, String)] = []
        for (field, values) in [("steps", ["-1", "2.5", "1e12", "1e999", "-1e999", "0"]), ("seed", ["-5", "1.5", "1e30", "1e999"]),
                                ("n", ["-1", "0", "1.5", "1e12", "1e999"]), ("guidance_scale", ["-1", "1e999", "1e300"]),
                                ("difficulty", ["-1", "0.5", "1e12", "1e999", "101"])] {
            for value in values { cases.append((images, "{\"\(field)\": \(value)}", field)) }
        }
        for size in ["-1x-1", "99999999999x2", "0x0", "1x", "x", "1x2x3", "16385x16"] {
            cases.append((images, "{\"size\": \"\(size)\"}", "size"))
        }
        cases.append((images, "{\"steps\": \"ten\"}", "steps"))
        cases.append((images, "{\"steps\": true}", "steps"))
        let chat = "/v1/chat/completions"
        let messages = "\"model\": \"llava\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]"
        for (field, values) in [("max_tokens", ["-1", "0", "1.5", "1e12", "1e999"]), ("max_completion_tokens", ["-7", "1e999"]),
                                ("temperature", ["-1", "3", "1e999"]), ("top_p", ["-0.5", "2", "1e999"]),
                                ("top_k", ["-1", "1e12", "0.5"]), ("repetition_penalty", ["-1", "1e999"]),
                                ("seed", ["1e30", "-1e30", "0.5", "1e999"]), ("n", ["1e999", "2"])] {
            for value in values { cases.append((chat, "{\(messages), \"\(field)\": \(value)}", field)) }
        }
        for value in ["-1", "0", "1e999", "-1e999", "100"] {
            cases.append(("/v1/audio/speech", "{\"input\": \"hello\", \"speed\": \(value)}", "speed"))
        }
        for (path, body, field) in cases {
            let (status, answer) = try await Self.post(stack.http, path, body)
            let error = answer["error"] as? [String: Any]
            #expect(status == 400, "\(path) \(body): \(status) \(answer)")
            // 1e999 is not JSON Foundation reads as a number: the whole body is refused, which is right too.
            if !body.contains("e999") || error?["param"] is String {
                #expect(error?["param"] as? String == field, "\(path) \(body): \(answer)")
            }
        }

        // Multipart forms: img2img's strength and steps, transcription's temperature.
        let png = Data(base64Encoded: "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVQI12NgAAAAAgAB4iG8MwAAAABJRU5ErkJggg==")!
        for (field, value) in [("strength", "-1"), ("strength", "nan"), ("strength", "inf"), ("steps", "-1"), ("steps", "1e12"), ("seed", "-5")] {
            let (body, type) = Self.multipart([(field, value)], file: ("image", png))
            let (status, answer) = try await Self.post(stack.http, "/v1/images/edits", body, contentType: type)
            #expect(status == 400 && (answer["error"] as? [String: Any])?["param"] as? String == field, "edits \(field)=\(value): \(status) \(answer)")
        }
        for value in ["-1", "nan", "2", "hot"] {
            let (body, type) = Self.multipart([("temperature", value)], file: ("file", Data("RIFF".utf8)))
            let (status, answer) = try await Self.post(stack.http, "/v1/audio/transcriptions", body, contentType: type)
            #expect(status == 400 && (answer["error"] as? [String: Any])?["param"] as? String == "temperature", "temperature=\(value): \(status) \(answer)")
        }

        // A pipeline step whose field path is empty set the whole request to a bare value, and
        // Foundation's JSONSerialization called fatalError on it.
        for field in ["", ".", "a..b", "params."] {
            let body = "{\"steps\": [{\"id\": \"a\", \"method\": \"diffusion.TextToImage\", \"inputs\": {\"\(field)\": \"1\"}}]}"
            let (status, answer) = try await Self.post(stack.http, "/v1/pipelines", body)
            #expect(status == 400, "field '\(field)': \(status) \(answer)")
        }

        // The same process is still serving, and a good request still gets its heightfield.
        #expect(stack.gateway.process.isRunning && stack.gateway.pid == pid)
        let (status, answer) = try await Self.post(stack.http, images, "{\"seed\": 7, \"difficulty\": 40}")
        #expect(status == 200 && ((answer["data"] as? [[String: Any]])?.first?["b64_json"] as? String)?.isEmpty == false, "\(answer)")
    }

    @Test func wireFieldsOutOfRangeGetInvalidArgument() async throws {
        let stack = try await Self.start()
        defer { stack.stop() }
        let address = try #require(stack.diffusion.listeningAddress)
        let diffusion = DiffusionClient(try WireClient(address: address))
        defer { (diffusion.channel as? WireClient)?.close() }
        let png = Data(base64Encoded: "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVQI12NgAAAAAgAB4iG8MwAAAABJRU5ErkJggg==")!
        let requests: [(TextToImageRequest, String)] = [
            (TextToImageRequest(steps: .max), "steps"), (TextToImageRequest(numImages: .max), "num_images"),
            (TextToImageRequest(width: .max, height: .max), "width"), (TextToImageRequest(height: 1 << 20), "height"),
            (TextToImageRequest(difficulty: .max), "difficulty"), (TextToImageRequest(guidanceScale: .nan), "guidance_scale"),
            (TextToImageRequest(guidanceScale: .infinity), "guidance_scale"), (TextToImageRequest(previewEvery: .max), "preview_every"),
        ]
        for (request, text) in requests {
            await #expect(throws: WireStatus.self, "\(request)") {
                do { _ = try await diffusion.textToImage(request).collected() } catch let status as WireStatus {
                    #expect(status.code == .invalidArgument && status.message.contains(text), "\(status)")
                    throw status
                }
            }
        }
        for strength in [Float.nan, .infinity, -1, 2] {
            await #expect(throws: WireStatus.self) {
                _ = try await diffusion.imageToImage(ImageToImageRequest(initImage: EncodedImage(data: png), strength: strength)).collected()
            }
        }
        #expect(stack.diffusion.process.isRunning)
        #expect(try await diffusion.health(HealthRequest()).state == .serving)
    }
}
