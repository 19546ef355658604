import ChorusMedia
import Foundation
import Testing

/// CannyEdges against OpenCV's cv2.Canny on 8 generated photograph-like scenes (colour and gray, odd sizes, a
/// 7×5 one) at 5 threshold settings (L2 and swapped thresholds included), recorded by
/// scripts/fixtures/make_canny_cases.py: every edge map identical, pixel for pixel.
@Suite struct CannyEdgesTests {
    static let folder = Bundle.module.resourcePath! + "/Fixtures/canny/"

    func png(_ name: String) throws -> Image {
        try ImageCodec.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.folder + name))))
    }

    @Test func everyEdgeMapIsOpenCVs() throws {
        let json = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: Self.folder + "cases.json"))) as! [String: Any]
        let cases = json["cases"] as! [[String: Any]]
        #expect(cases.count == 40)
        var edgePixels = 0
        for c in cases {
            let image = try png(c["image"] as! String)
            let expected = try png(c["edges"] as! String)
            let edges = CannyEdges.edges(image, low: Double(c["low"] as! Int), high: Double(c["high"] as! Int), l2Gradient: c["l2"] as! Bool)
            #expect(edges.width == expected.width && edges.height == expected.height && edges.channels == 1)
            let differing = zip(edges.pixels, expected.pixels).filter { $0 != $1 }.count
            #expect(differing == 0, "\(c["edges"]!): \(differing) pixels differ")
            edgePixels += edges.pixels.filter { $0 == 255 }.count
        }
        #expect(edgePixels == cases.map { $0["edge_pixels"] as! Int }.reduce(0, +))
    }

    @Test func aFlatImageHasNoEdgesAndAStepHasOne() throws {
        let flat = try Image(width: 9, height: 9, channels: 1, pixels: Array(repeating: 77, count: 81))
        #expect(CannyEdges.edges(flat, low: 100, high: 200).pixels.allSatisfy { $0 == 0 })
        // A vertical step from 0 to 255 between columns 4 and 5: one column of edges, all rows.
        let step = try Image(width: 10, height: 6, channels: 1, pixels: (0..<60).map { $0 % 10 < 5 ? 0 : 255 })
        let edges = CannyEdges.edges(step, low: 100, high: 200)
        let columns = Set((0..<60).filter { edges.pixels[$0] == 255 }.map { $0 % 10 })
        #expect(columns.count == 1 && (4...5).contains(columns.first!), "\(columns)")
    }
}
