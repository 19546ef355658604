import ChorusAPI
import ChorusTestSupport
import ChorusWire
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

/// `chorus load` as a user runs it, against real services on loopback.
@Suite(.serialized) struct LoadProcessTests {
    static func report(_ path: String) throws -> [[String: Any]] {
        let data = try #require(FileManager.default.contents(atPath: path))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try #require(json["levels"] as? [[String: Any]])
    }

    static func latency(_ row: [String: Any], _ key: String = "latency_ms") -> [String: Double] {
        ((row[key] as? [String: Any]) ?? [:]).compactMapValues { ($0 as? NSNumber)?.doubleValue }
    }

    @Test func aConcurrencySweepOfTranscriptionsReportsEveryLevel() async throws {
        let (_, address) = try await SpeechProcessTests.service
        let wav = SpeechProcessTests.repository.appendingPathComponent("Tests/SpeechServiceTests/Fixtures/espeak_lights.wav").path
        let folder = NSTemporaryDirectory() + "chorus-load-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let (status, output) = try await ChorusProcess.run([
            "load", "speech.Transcribe", #"{"model": "whisper-tiny.en"}"#, "--file", "audio.wav=\(wav)", "--target", address,
            "--concurrency", "1:2:x2", "--requests", "3", "--warmup", "1", "--json", folder + "/run.json", "--csv", folder + "/run.csv"],
            timeout: 120)
        #expect(status == 0, "\(output)")
        let rows = try Self.report(folder + "/run.json")
        #expect(rows.map { $0["concurrency"] as? Int } == [1, 2], "\(rows)")
        for row in rows {
            #expect(row["sent"] as? Int == 3 && row["succeeded"] as? Int == 3 && (row["failures"] as? [String: Int])?.isEmpty == true, "\(row)")
            let e2e = Self.latency(row), first = Self.latency(row, "first_answer_ms")
            let (p50, p90, p99, max) = (e2e["p50"] ?? -1, e2e["p90"] ?? -1, e2e["p99"] ?? -1, e2e["max"] ?? -1)
            #expect(0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= max, "\(e2e)")
            // The first segment streams before the final result.
            #expect((first["p50"] ?? .infinity) <= max, "\(first) vs \(e2e)")
            // The real-time factor is the processing time over the clip's 2.37 s, named as such.
            let rtf = try #require(row["real_time_factor"] as? [String: Any])
            let overall = (rtf["overall"] as? Double) ?? -1, audio = (rtf["audio_s"] as? Double) ?? -1
            #expect(rtf["of"] as? String == "processing ÷ input audio" && abs(audio - 3 * 2.3733) < 0.01, "\(rtf)")
            #expect(abs(overall - (e2e["mean"] ?? 0) / 1000 / 2.3733) < 0.01 * overall + 0.001, "\(rtf) vs \(e2e)")
            // The service's own count moved by the calls sent (and the warm-up and status reads around them).
            let before = try #require(row["server_before"] as? [String: Any]), after = try #require(row["server_after"] as? [String: Any])
            let counted = ((after["calls_total"] as? Int) ?? 0) - ((before["calls_total"] as? Int) ?? 0)
            #expect((3...6).contains(counted) && ((after["peak_resident_mib"] as? Double) ?? 0) > 10, "\(before) \(after)")
        }
        let csv = try String(contentsOfFile: folder + "/run.csv", encoding: .utf8).split(separator: "\n")
        #expect(csv.count == 3 && csv[0].hasPrefix("Concurrency,") && csv[1].hasPrefix("1,") && csv[2].hasPrefix("2,"), "\(csv)")
        #expect(output.contains("concurrency 1") && output.contains("concurrency 2"), "\(output)")
    }

    @Test func overloadAtARateIsCountedAsResourceExhausted() async throws {
        let (service, address) = try await ChorusProcess.serve(["speech", "--port", "0", "--max-concurrency", "1", "--max-queue", "0"])
        defer { service.signal(SIGKILL) }
        // Each call holds the only slot for 300 ms; 20 arrive at 20/s: most find it taken.
        let (status, output) = try await ChorusProcess.run([
            "load", "speech.Echo", #"{"delay_ms": 300}"#, "--target", address, "--rate", "20", "--arrivals", "constant",
            "--requests", "20", "--warmup", "0", "--json", "-"], timeout: 60)
        #expect(status == 0, "\(output)")
        let start = try #require(output.firstIndex(of: "{"))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(output[start...].utf8)) as? [String: Any])
        let row = try #require((json["levels"] as? [[String: Any]])?.first)
        let refused = (row["failures"] as? [String: Int])?["RESOURCE_EXHAUSTED"] ?? 0
        #expect(row["sent"] as? Int == 20 && refused > 0 && (row["succeeded"] as? Int ?? 0) + refused == 20, "\(row)")
    }

    @Test func badInputsFailClearlyWithoutHanging() async throws {
        let (_, address) = try await SpeechProcessTests.service
        let unknown = try await ChorusProcess.run(["load", "speech.Nope", "--target", address, "--requests", "1"])
        #expect(unknown.0 != 0 && unknown.1.contains("speech.Nope"), "\(unknown.1)")
        let field = try await ChorusProcess.run(["load", "speech.Echo", #"{"delay_ms": "soon"}"#, "--target", address, "--requests", "1"])
        #expect(field.0 != 0 && field.1.contains("EchoRequest"), "\(field.1)")
        let folder = try await ChorusProcess.run(["load", "speech.Transcribe", "--inputs", "audio.wav=/nonexistent/folder", "--target", address])
        #expect(folder.0 != 0 && folder.1.contains("/nonexistent/folder"), "\(folder.1)")
        let unreachable = try await ChorusProcess.run(["load", "speech.Echo", "--target", "127.0.0.1:\(try freePort())", "--requests", "1"])
        #expect(unreachable.0 != 0 && unreachable.1.contains("cannot reach"), "\(unreachable.1)")
        let sweep = try await ChorusProcess.run(["load", "speech.Echo", "--target", address, "--concurrency", "8:1:x2"])
        #expect(sweep.0 != 0 && sweep.1.contains("--concurrency"), "\(sweep.1)")
        let http = try await ChorusProcess.run(["load", "/v1/echo", "--target", "127.0.0.1:\(try freePort())", "--requests", "1"])
        #expect(http.0 != 0 && http.1.contains("cannot reach"), "\(http.1)")
        let synthetic = try await ChorusProcess.run(["load", "speech.Transcribe", "--synthetic", "audio.wav=audio:forever", "--target", address])
        #expect(synthetic.0 != 0 && synthetic.1.contains("--synthetic audio"), "\(synthetic.1)")
        let slo = try await ChorusProcess.run(["load", "speech.Echo", "--slo", "speed=fast", "--target", address])
        #expect(slo.0 != 0 && slo.1.contains("--slo"), "\(slo.1)")
    }

    /// A vision service with the tiny LLaVA fixture and a gateway in front of it and the speech service.
    static func stack() async throws -> (vision: ChorusProcess, gateway: ChorusProcess, visionAddress: String, http: String) {
        let models = NSTemporaryDirectory() + "chorus-load-models-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: models, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: models + "/llava-tiny", withDestinationPath: ChatProcessTests.llavaFolder.path)
        try FileManager.default.createSymbolicLink(atPath: models + "/clip-tiny", withDestinationPath: VisionProcessTests.clipFolder.path)
        let (vision, visionAddress) = try await ChorusProcess.serve(["vision", "--port", "0", "--models", models])
        let (_, speech) = try await SpeechProcessTests.service
        let (gateway, _) = try await ChorusProcess.serve(["gateway", "--port", "0", "--vision", visionAddress, "--speech", speech, "--http-port", "0"])
        let line = try await gateway.waitForLine(containing: "OpenAI-compatible HTTP on http://")
        let http = String(line[line.range(of: "http://")!.lowerBound...].split(separator: " ").first!)
        return (vision, gateway, visionAddress, http)
    }

    static func json(_ output: String) throws -> [String: Any] {
        let start = try #require(output.firstIndex(of: "{"), "\(output)")
        return try #require(try JSONSerialization.jsonObject(with: Data(output[start...].utf8)) as? [String: Any], "\(output)")
    }

    /// TTFT comes before the end, and the token figures agree with each other: at concurrency 1 a call is
    /// its TTFT plus a TPOT per later token, and tokens/s is the tokens of a call over its time.
    static func expectConsistentChat(_ row: [String: Any], requests: Int, tokensPerCall: Int) throws {
        #expect(row["sent"] as? Int == requests && row["succeeded"] as? Int == requests, "\(row)")
        let tokens = try #require(row["output_tokens"] as? Int, "\(row)")
        #expect(tokens == requests * tokensPerCall, "\(row)")
        let e2e = latency(row), ttft = latency(row, "ttft_ms"), tpot = latency(row, "tpot_ms"), itl = latency(row, "itl_ms")
        let (e2eMean, ttftMean, tpotMean) = (e2e["mean"] ?? 0, ttft["mean"] ?? 0, tpot["mean"] ?? 0)
        #expect(0 < ttftMean && ttftMean < e2eMean && (ttft["p50"] ?? .infinity) < (e2e["p50"] ?? 0), "\(ttft) vs \(e2e)")
        let rebuilt = ttftMean + tpotMean * Double(tokensPerCall - 1)
        #expect(abs(rebuilt - e2eMean) <= 0.02 * e2eMean + 0.05, "TTFT \(ttftMean) + TPOT \(tpotMean) × \(tokensPerCall - 1) vs E2E \(e2eMean)")
        let perSecond = try #require(row["output_tokens_per_s"] as? Double)
        let expected = Double(tokensPerCall) / (e2eMean / 1000)
        #expect(perSecond <= expected * 1.02 && perSecond >= expected * 0.25, "\(perSecond) tokens/s vs \(expected) from the latency")
        #expect((itl["count"] ?? 0) > 0, "\(itl)")
    }

    @Test func aStreamingChatReportsTTFTAndTPOTOverTheWireAndHTTP() async throws {
        let stack = try await Self.stack()
        defer { stack.gateway.signal(SIGKILL); stack.vision.signal(SIGKILL) }
        let png = ChatProcessTests.llavaFolder.appendingPathComponent("input_image.png").path
        let wire = try await ChorusProcess.run([
            "load", "vision.Chat", #"{"model": "llava-tiny", "generation": {"max_new_tokens": 12}, "messages": [{"role": "user", "parts": [{"image": {}}, {"text": "What is this?"}]}]}"#,
            "--file", "messages.0.parts.0.image.data=\(png)", "--target", stack.visionAddress, "--requests", "6", "--json", "-"], timeout: 120)
        #expect(wire.0 == 0, "\(wire.1)")
        try Self.expectConsistentChat(try #require((try Self.json(wire.1)["levels"] as? [[String: Any]])?.first), requests: 6, tokensPerCall: 12)

        let body = #"{"model": "llava-tiny", "stream": true, "max_tokens": 12, "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "Hello there"}]}"#
        let http = try await ChorusProcess.run(["load", "/v1/chat/completions", body, "--target", stack.http, "--requests", "6",
                                                "--slo", "ttft=10s,tpot=5s", "--json", "-"], timeout: 120)
        #expect(http.0 == 0, "\(http.1)")
        let row = try #require((try Self.json(http.1)["levels"] as? [[String: Any]])?.first)
        try Self.expectConsistentChat(row, requests: 6, tokensPerCall: 12)
        #expect(row["met_slo"] as? Int == 6 && ((row["goodput_per_s"] as? Double) ?? 0) > 0, "\(row)")

        // Without a count or a time, a level runs windows until three agree (or the trials run out), with
        // made-up prompts in a list field.
        let embed = try await ChorusProcess.run(["load", "vision.EmbedTexts", #"{"model": "clip-tiny"}"#, "--synthetic", "texts.0=text:12",
                                                 "--target", stack.visionAddress, "--window-ms", "300", "--stability-percent", "50",
                                                 "--max-trials", "6", "--json", "-"], timeout: 60)
        #expect(embed.0 == 0, "\(embed.1)")
        let level = try #require((try Self.json(embed.1)["levels"] as? [[String: Any]])?.first)
        let windows = try #require(level["windows"] as? [[String: Any]])
        #expect((3...6).contains(windows.count) && level["stable"] is Bool && ((level["succeeded"] as? Int) ?? 0) > 0, "\(level)")
        #expect((level["failures"] as? [String: Int])?.isEmpty == true, "\(level)")
    }

    @Test func transcriptionsOverHTTPPlotAndCompare() async throws {
        let stack = try await Self.stack()
        defer { stack.gateway.signal(SIGKILL); stack.vision.signal(SIGKILL) }
        let folder = NSTemporaryDirectory() + "chorus-load-http-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let wav = SpeechProcessTests.repository.appendingPathComponent("Tests/SpeechServiceTests/Fixtures/espeak_lights.wav").path
        let real = try await ChorusProcess.run([
            "load", "/v1/audio/transcriptions", #"{"model": "whisper-tiny.en"}"#, "--file", "file=\(wav)", "--target", stack.http,
            "--concurrency", "1,2", "--requests", "2", "--json", folder + "/a.json", "--plot", folder + "/a.svg"], timeout: 180)
        #expect(real.0 == 0 && real.1.contains("real-time factor (processing ÷ input audio)"), "\(real.1)")
        let rows = try Self.report(folder + "/a.json")
        #expect(rows.map { $0["succeeded"] as? Int } == [2, 2], "\(rows)")
        let svg = try #require(FileManager.default.contents(atPath: folder + "/a.svg"))
        let parser = XMLParser(data: svg)
        #expect(parser.parse() && String(decoding: svg, as: UTF8.self).contains("c=2"))

        // Made-up audio: 3 s of tone, sent as the form's file.
        let synthetic = try await ChorusProcess.run([
            "load", "/v1/audio/transcriptions", #"{"model": "whisper-tiny.en"}"#, "--synthetic", "file=audio:3s", "--target", stack.http,
            "--concurrency", "1", "--requests", "2", "--json", folder + "/b.json"], timeout: 180)
        #expect(synthetic.0 == 0, "\(synthetic.1)")
        let rtf = try #require(try Self.report(folder + "/b.json").first?["real_time_factor"] as? [String: Any])
        #expect(abs(((rtf["audio_s"] as? Double) ?? 0) - 6) < 0.01, "\(rtf)")

        let compare = try await ChorusProcess.run(["load", "--compare", folder + "/a.json", folder + "/b.json"])
        #expect(compare.0 == 0 && compare.1.contains("B ÷ A") && compare.1.contains("concurrency 1") && compare.1.contains("| RTF"), "\(compare.1)")
        let notAReport = try await ChorusProcess.run(["load", "--compare", folder + "/a.json", folder + "/a.svg"])
        #expect(notAReport.0 != 0 && notAReport.1.contains("not a chorus load --json report"), "\(notAReport.1)")
    }

    @Test func synthesisAndDiffusionReportTheirOwnFigures() async throws {
        let (_, speech) = try await SpeechProcessTests.service
        let folder = NSTemporaryDirectory() + "chorus-load-prompts-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Data("\"Good morning.\"\n{\"prompt\": \"How are you today? Fine, thanks.\"}\n".utf8).write(to: URL(fileURLWithPath: folder + "/prompts.jsonl"))
        let tts = try await ChorusProcess.run(["load", "speech.Synthesize", "{}", "--prompts", "text=\(folder)/prompts.jsonl", "--order", "random",
                                               "--target", speech, "--requests", "3", "--json", "-"], timeout: 120)
        #expect(tts.0 == 0, "\(tts.1)")
        let spoken = try #require((try Self.json(tts.1)["levels"] as? [[String: Any]])?.first)
        let rtf = try #require(spoken["real_time_factor"] as? [String: Any], "\(spoken)")
        // Time to the first audio chunk, and processing over the audio the answers carried.
        #expect(rtf["of"] as? String == "processing ÷ audio produced" && ((rtf["audio_s"] as? Double) ?? 0) > 3 * 0.5, "\(rtf)")
        #expect((Self.latency(spoken, "first_answer_ms")["p50"] ?? .infinity) <= (Self.latency(spoken)["max"] ?? 0), "\(spoken)")
        let badPrompts = try await ChorusProcess.run(["load", "speech.Synthesize", "--prompts", "text=\(folder)/nowhere.jsonl", "--target", speech])
        #expect(badPrompts.0 != 0 && badPrompts.1.contains("nowhere.jsonl"), "\(badPrompts.1)")

        _ = try RealModels.path("terrain/terrain_consistency_unet_difficulty100.onnx")
        let (diffusion, address) = try await ChorusProcess.serve(["diffusion", "--port", "0", "--models", RealModels.root.path])
        defer { diffusion.signal(SIGKILL) }
        let images = try await ChorusProcess.run(["load", "diffusion.TextToImage", #"{"difficulty": 60, "num_images": 2}"#, "--target", address,
                                                  "--requests", "3", "--json", "-"], timeout: 120)
        #expect(images.0 == 0, "\(images.1)")
        let row = try #require((try Self.json(images.1)["levels"] as? [[String: Any]])?.first)
        let perStep = try #require(row["s_per_step"] as? [String: Any], "\(row)")
        let (perSecond, imagesPerSecond) = ((row["requests_per_s"] as? Double) ?? 0, (row["images_per_s"] as? Double) ?? 0)
        #expect(perStep["count"] as? Int == 3 && ((perStep["p50"] as? Double) ?? 0) > 0, "\(perStep)")
        #expect(abs(imagesPerSecond - 2 * perSecond) <= 0.01 * imagesPerSecond, "\(row)")
    }
}
