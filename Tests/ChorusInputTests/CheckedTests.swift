import ChorusInput
import XCTest

/// The conversions that trapped on client numbers (UInt32(-1.0), UInt64(-5.0), UInt32(1e12),
/// Int(Double.nan)) now answer InvalidField naming the field and its range.
final class CheckedTests: XCTestCase {
    func testWholeNumbersInRangeConvert() throws {
        XCTAssertEqual(try Checked.integer(20.0, "steps", in: UInt32(1)...UInt32(10_000)), 20)
        XCTAssertEqual(try Checked.integer(-5.0, "seed", in: Int64.min...Int64.max), -5)
        XCTAssertEqual(try Checked.integer(1.8e19, "seed", in: UInt64.min...UInt64.max), 18_000_000_000_000_000_000)
    }

    func testTheCrashingShapesAreRefusedWithTheFieldAndRange() {
        let range = UInt32(1)...UInt32(10_000)
        for (value, fragment) in [(-1.0, "-1; it must be 1 ... 10000"), (1e12, "1000000000000; it must be 1 ... 10000"),
                                  (2.5, "whole number"), (.nan, "finite"), (.infinity, "finite"), (-.infinity, "finite"),
                                  (0.0, "0; it must be 1 ... 10000")] {
            XCTAssertThrowsError(try Checked.integer(value, "steps", in: range), "\(value)") { error in
                let invalid = error as? InvalidField
                XCTAssertEqual(invalid?.field, "steps")
                XCTAssertTrue(invalid?.message.contains(fragment) ?? false, invalid?.message ?? "\(error)")
            }
        }
        // 2^64 is one past UInt64.max and 2^63 one past Int64.max: both are Doubles a client can send.
        XCTAssertThrowsError(try Checked.integer(18_446_744_073_709_551_616.0, "seed", in: UInt64.min...UInt64.max))
        XCTAssertThrowsError(try Checked.integer(9_223_372_036_854_775_808.0, "seed", in: Int64.min...Int64.max))
        XCTAssertThrowsError(try Checked.integer(-5.0, "seed", in: UInt64.min...UInt64.max))
    }

    func testIntegersOfOtherWidthsAndZeroAsUnset() throws {
        XCTAssertEqual(try Checked.integer(UInt32(7), "beam_size", in: 1...16), 7)
        XCTAssertThrowsError(try Checked.integer(UInt32.max, "beam_size", in: 1...16))
        XCTAssertThrowsError(try Checked.integer(Int64(-1), "shape", in: Int(0)...Int.max))
        XCTAssertEqual(try Checked.integer(UInt32(0), "beam_size", in: 1...16, zeroMeans: 5), 5)
        XCTAssertEqual(try Checked.integer(UInt32(3), "beam_size", in: 1...16, zeroMeans: 5), 3)
        XCTAssertThrowsError(try Checked.integer(UInt32(17), "beam_size", in: 1...16, zeroMeans: 5))
    }

    func testNumbersMustBeFiniteAndInRange() throws {
        XCTAssertEqual(try Checked.number(Float(0.5), "temperature", in: 0...1), 0.5)
        XCTAssertThrowsError(try Checked.number(Float.nan, "temperature", in: 0...1))
        XCTAssertThrowsError(try Checked.number(Float(1.5), "temperature", in: 0...1))
        // Float(1e300) would be infinity: the Double is checked before it narrows.
        XCTAssertThrowsError(try Checked.float(1e300, "guidance_scale", in: 0...100))
        XCTAssertEqual(try Checked.float(7.5, "guidance_scale", in: 0...100), 7.5)
    }

    func testProductsAndSumsRefuseOverflowAndLimits() throws {
        XCTAssertEqual(try Checked.product([512, 512, 3, 4], "image", limit: 1 << 30), 3_145_728)
        XCTAssertThrowsError(try Checked.product([1 << 32, 1 << 32, 4], "image", limit: .max)) { error in
            XCTAssertTrue((error as? InvalidField)?.message.contains("4294967296 × 4294967296 × 4") ?? false)
        }
        XCTAssertThrowsError(try Checked.product([100_000, 100_000], "image", limit: 64 << 20))
        XCTAssertThrowsError(try Checked.product([-1, 5], "image", limit: .max))
        XCTAssertEqual(try Checked.sum(3, 4, "length"), 7)
        XCTAssertThrowsError(try Checked.sum(.max, 1, "length"))
        XCTAssertThrowsError(try Checked.sum(10, 10, "length", limit: 15))
    }
}
