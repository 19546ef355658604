import Foundation

/// OpenPose body keypoints (the 18-point COCO layout: nose, neck, right shoulder, elbow, wrist, left shoulder,
/// elbow, wrist, right hip, knee, ankle, left hip, knee, ankle, right eye, left eye, right ear, left ear) drawn
/// as ControlNet's openpose models were trained to see them — controlnet_aux's `draw_bodypose`: on black,
/// each of 18 limbs a filled ellipse 4 px thick in its colour at 60%, then each point a filled disc of radius
/// 4 in its colour; points of confidence 0 and limbs that touch them are left out.
public enum OpenPoseDrawing {
    /// One person's 18 points in pixels; nil where the point was not found.
    public typealias Person = [(x: Double, y: Double)?]

    public struct Keypoints: Sendable {
        public var people: [Person]
        public var canvasWidth: Int?
        public var canvasHeight: Int?
    }

    public enum KeypointsError: Error, Equatable, CustomStringConvertible {
        case notJSON
        case badPerson(index: Int, problem: String)
        case badCanvas(String)

        public var description: String {
            switch self {
            case .notJSON: "keypoints are not a JSON object with a \"people\" list"
            case .badPerson(let i, let problem): "people[\(i)].pose_keypoints_2d: \(problem)"
            case .badCanvas(let problem): "canvas: \(problem)"
            }
        }
    }

    /// 1-based point pairs of the limbs, in controlnet_aux's order (its 19th pair, (6, 18), has no colour and is
    /// not drawn).
    static let limbs = [(2, 3), (2, 6), (3, 4), (4, 5), (6, 7), (7, 8), (2, 9), (9, 10), (10, 11), (2, 12), (12, 13), (13, 14),
                        (2, 1), (1, 15), (15, 17), (1, 16), (16, 18), (3, 17)]
    static let colours: [[UInt8]] = [[255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0], [0, 255, 0],
                                     [0, 255, 85], [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255], [0, 0, 255], [85, 0, 255],
                                     [170, 0, 255], [255, 0, 255], [255, 0, 170], [255, 0, 85]]

    /// OpenPose's JSON output (`{"people": [{"pose_keypoints_2d": [x, y, c, …]}], "canvas_width", "canvas_height"}`),
    /// 18 points of (x, y, confidence) per person; coordinates must be finite and within ±100,000 px.
    public static func keypoints(json: String) throws -> Keypoints {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
              let people = object["people"] as? [Any] else { throw KeypointsError.notJSON }
        guard people.count <= 64 else { throw KeypointsError.badPerson(index: 64, problem: "more than 64 people") }
        let parsed = try people.enumerated().map { index, entry -> Person in
            guard let values = (entry as? [String: Any])?["pose_keypoints_2d"] as? [Any] else {
                throw KeypointsError.badPerson(index: index, problem: "missing")
            }
            let numbers = values.compactMap { ($0 as? NSNumber)?.doubleValue }
            guard numbers.count == values.count, numbers.count == 54 else {
                throw KeypointsError.badPerson(index: index, problem: "\(values.count) values; 18 points of x, y, confidence are 54 numbers")
            }
            guard numbers.allSatisfy({ $0.isFinite && abs($0) <= 100_000 }) else {
                throw KeypointsError.badPerson(index: index, problem: "a value is not a finite number within ±100000")
            }
            return (0..<18).map { k in numbers[3 * k + 2] > 0 ? (numbers[3 * k], numbers[3 * k + 1]) : nil }
        }
        func side(_ key: String) throws -> Int? {
            guard let value = object[key] else { return nil }
            guard let n = (value as? NSNumber)?.doubleValue, n.isFinite, n >= 1, n <= 8192, n == n.rounded() else {
                throw KeypointsError.badCanvas("\(key) must be a whole number of pixels, 1 ... 8192")
            }
            return Int(n)  // checked: a whole number in 1 ... 8192
        }
        return Keypoints(people: parsed, canvasWidth: try side("canvas_width"), canvasHeight: try side("canvas_height"))
    }

    /// The skeletons on a black RGB canvas of `width` × `height`. Points that are not finite or lie past
    /// ±100,000 px are left out (`keypoints(json:)` refuses them).
    public static func draw(_ people: [Person], width: Int, height: Int) throws -> Image {
        var canvas = try Image(width: width, height: height, channels: 3, pixels: [UInt8](repeating: 0, count: width * height * 3))
        for var person in people {
            person = (0..<18).map { k in
                guard k < person.count, let p = person[k], p.x.isFinite, p.y.isFinite, abs(p.x) <= 100_000, abs(p.y) <= 100_000 else { return nil }
                return p
            }
            for ((a, b), colour) in zip(limbs, colours) {
                guard let p = person[a - 1], let q = person[b - 1] else { continue }
                let (mx, my) = ((p.x + q.x) / 2, (p.y + q.y) / 2)
                let length = ((p.x - q.x) * (p.x - q.x) + (p.y - q.y) * (p.y - q.y)).squareRoot()
                let angle = atan2(p.y - q.y, p.x - q.x) * 180 / .pi
                let polygon = ellipse(center: (Int(mx), Int(my)), axes: (Int(length / 2), 4), angle: Int(angle))  // checked: points within ±100000
                fillConvex(&canvas, polygon, colour.map { UInt8(Double($0) * 0.6) })  // checked: ≤ 255 · 0.6
            }
            for (point, colour) in zip(person, colours) {
                guard let point else { continue }
                disc(&canvas, center: (Int(point.x), Int(point.y)), radius: 4, colour)  // checked: points within ±100000
            }
        }
        return canvas
    }

    /// OpenCV's `ellipse2Poly(center, axes, angle, 0, 360, 1)`: a point a degree, rotated, rounded (half to even),
    /// repeats dropped; sines and cosines of whole degrees in single precision, as its table holds them.
    static func ellipse(center: (Int, Int), axes: (Int, Int), angle: Int) -> [(Int, Int)] {
        var rotation = angle % 360
        if rotation < 0 { rotation += 360 }
        func table(_ degrees: Int) -> (Double, Double) {
            (Double(Float(cos(Double(degrees) * .pi / 180))), Double(Float(sin(Double(degrees) * .pi / 180))))
        }
        let (alpha, beta) = table(rotation)
        var points: [(Int, Int)] = []
        for degree in 0...360 {
            let (c, s) = table(degree)
            let (x, y) = (c * Double(axes.0), s * Double(axes.1))
            let point = (Int((Double(center.0) + x * alpha - y * beta).rounded(.toNearestOrEven)),  // checked: within ±300000
                         Int((Double(center.1) + x * beta + y * alpha).rounded(.toNearestOrEven)))  // checked: within ±300000
            if points.last.map({ $0 != point }) ?? true { points.append(point) }
        }
        return points
    }

    /// A convex polygon filled row by row: every pixel whose centre lies within the polygon's span on that row
    /// (the outline included).
    static func fillConvex(_ image: inout Image, _ polygon: [(Int, Int)], _ colour: [UInt8]) {
        guard let top = polygon.map(\.1).min(), let bottom = polygon.map(\.1).max() else { return }
        let (first, last) = (max(0, top), min(image.height - 1, bottom))
        guard first <= last else { return }
        for y in first...last {
            var left = Double.infinity, right = -Double.infinity
            for i in polygon.indices {
                let (p, q) = (polygon[i], polygon[(i + 1) % polygon.count])
                if p.1 == q.1 {
                    if p.1 == y { (left, right) = (min(left, Double(min(p.0, q.0))), max(right, Double(max(p.0, q.0)))) }
                } else if (min(p.1, q.1)...max(p.1, q.1)).contains(y) {
                    let x = Double(p.0) + Double(y - p.1) * Double(q.0 - p.0) / Double(q.1 - p.1)
                    (left, right) = (min(left, x), max(right, x))
                }
            }
            guard left <= right else { continue }
            let from = max(0, Int(left.rounded(.toNearestOrEven))), to = min(image.width - 1, Int(right.rounded(.toNearestOrEven)))  // checked: between polygon vertices
            guard from <= to else { continue }
            for x in from...to { image.pixels.replaceSubrange((y * image.width + x) * 3..<((y * image.width + x) * 3 + 3), with: colour) }
        }
    }

    /// OpenCV's filled `Circle` (8-connected, no antialiasing): the midpoint circle's rows.
    static func disc(_ image: inout Image, center: (Int, Int), radius: Int, _ colour: [UInt8]) {
        func row(_ y: Int, _ x0: Int, _ x1: Int) {
            guard y >= 0, y < image.height else { return }
            let from = max(0, x0), to = min(image.width - 1, x1)
            guard from <= to else { return }
            for x in from...to { image.pixels.replaceSubrange((y * image.width + x) * 3..<((y * image.width + x) * 3 + 3), with: colour) }
        }
        var err = 0, dx = radius, dy = 0, plus = 1, minus = (radius << 1) - 1
        while dx >= dy {
            row(center.1 - dy, center.0 - dx, center.0 + dx)
            row(center.1 + dy, center.0 - dx, center.0 + dx)
            row(center.1 - dx, center.0 - dy, center.0 + dy)
            row(center.1 + dx, center.0 - dy, center.0 + dy)
            dy += 1
            err += plus
            plus += 2
            let mask = (err <= 0 ? 1 : 0) - 1
            err -= minus & mask
            dx += mask
            minus -= mask & 2
        }
    }
}
