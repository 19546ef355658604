import ChorusMedia
import Foundation
import Testing

/// OpenPoseDrawing against controlnet_aux's draw_bodypose as OpenCV draws it (scripts/fixtures/make_pose_cases.py):
/// six canvases, one to three people each, points missing and off the canvas — identical, pixel for pixel.
@Suite struct OpenPoseDrawingTests {
    static let folder = Bundle.module.resourcePath! + "/Fixtures/pose/"

    @Test func skeletonsMatchControlnetAuxsDrawing() throws {
        let json = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: Self.folder + "cases.json"))) as! [String: Any]
        var differing = 0, drawn = 0
        for c in json["cases"] as! [[String: Any]] {
            let text = try String(contentsOfFile: Self.folder + (c["json"] as! String), encoding: .utf8)
            let keypoints = try OpenPoseDrawing.keypoints(json: text)
            let image = try OpenPoseDrawing.draw(keypoints.people, width: keypoints.canvasWidth!, height: keypoints.canvasHeight!)
            let expected = try ImageCodec.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.folder + (c["png"] as! String)))))
            #expect(image.width == expected.width && image.height == expected.height)
            var here = 0
            for i in 0..<(image.width * image.height) where image.pixels[(3 * i)..<(3 * i + 3)] != expected.pixels[(3 * i)..<(3 * i + 3)] {
                here += 1
            }
            differing += here
            drawn += c["drawn_pixels"] as! Int
        }
        #expect(drawn > 10_000)
        #expect(differing == 0, "\(differing) of \(drawn) drawn pixels differ")
    }

    @Test func badKeypointsAreRefusedByName() {
        #expect(throws: OpenPoseDrawing.KeypointsError.notJSON) { try OpenPoseDrawing.keypoints(json: "[1, 2]") }
        #expect(throws: OpenPoseDrawing.KeypointsError.self) { try OpenPoseDrawing.keypoints(json: #"{"people": [{"pose_keypoints_2d": [1, 2, 3]}]}"#) }
        let huge = #"{"people": [{"pose_keypoints_2d": [1e300"# + String(repeating: ", 1", count: 53) + "]}]}"
        #expect(throws: OpenPoseDrawing.KeypointsError.self) { try OpenPoseDrawing.keypoints(json: huge) }
        #expect(throws: OpenPoseDrawing.KeypointsError.badCanvas("canvas_width must be a whole number of pixels, 1 ... 8192")) {
            try OpenPoseDrawing.keypoints(json: #"{"people": [], "canvas_width": -5}"#)
        }
    }
}
