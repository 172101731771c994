//! Which landmarks connect to which: MediaPipe's published connection lists (pose, hand) and
//! the face mesh's contour loops, used for drawing and for the parser's face region.

/// Pose skeleton edges (MediaPipe `POSE_CONNECTIONS`).
pub const POSE_EDGES: [(usize, usize); 35] = [
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 7),
    (0, 4),
    (4, 5),
    (5, 6),
    (6, 8),
    (9, 10),
    (11, 12),
    (11, 13),
    (13, 15),
    (15, 17),
    (15, 19),
    (15, 21),
    (17, 19),
    (12, 14),
    (14, 16),
    (16, 18),
    (16, 20),
    (16, 22),
    (18, 20),
    (11, 23),
    (12, 24),
    (23, 24),
    (23, 25),
    (24, 26),
    (25, 27),
    (26, 28),
    (27, 29),
    (28, 30),
    (29, 31),
    (30, 32),
    (27, 31),
    (28, 32),
];

/// Hand skeleton edges (MediaPipe `HAND_CONNECTIONS`).
pub const HAND_EDGES: [(usize, usize); 21] = [
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 4),
    (0, 5),
    (5, 6),
    (6, 7),
    (7, 8),
    (5, 9),
    (9, 10),
    (10, 11),
    (11, 12),
    (9, 13),
    (13, 14),
    (14, 15),
    (15, 16),
    (13, 17),
    (0, 17),
    (17, 18),
    (18, 19),
    (19, 20),
];

/// The face oval, as a closed loop of mesh indices (clockwise from the forehead top).
pub const FACE_OVAL: [usize; 36] = [
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
    148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
];

/// Outer lip contour, closed loop.
pub const LIPS_OUTER: [usize; 20] = [
    61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185,
];

/// Inner lip contour, closed loop.
pub const LIPS_INNER: [usize; 20] = [
    78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191,
];

/// The person's right eye (image left in a front view), closed loop.
pub const RIGHT_EYE: [usize; 16] = [
    33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246,
];

/// The person's left eye, closed loop.
pub const LEFT_EYE: [usize; 16] = [
    263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466,
];

/// The person's right eyebrow: two open polylines (MediaPipe draws its two edges apart).
pub const RIGHT_EYEBROW: [&[usize]; 2] = [&[46, 53, 52, 65, 55], &[70, 63, 105, 66, 107]];

/// The person's left eyebrow: two open polylines.
pub const LEFT_EYEBROW: [&[usize]; 2] = [&[276, 283, 282, 295, 285], &[300, 293, 334, 296, 336]];

/// Face contours to draw: (indices, closed).
pub const FACE_CONTOURS: [(&[usize], bool); 9] = [
    (&FACE_OVAL, true),
    (&LIPS_OUTER, true),
    (&LIPS_INNER, true),
    (&RIGHT_EYE, true),
    (&LEFT_EYE, true),
    (RIGHT_EYEBROW[0], false),
    (RIGHT_EYEBROW[1], false),
    (LEFT_EYEBROW[0], false),
    (LEFT_EYEBROW[1], false),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_in_range_and_loops_have_no_repeats() {
        for (e0, e1) in POSE_EDGES {
            assert!(e0 < 33 && e1 < 33);
        }
        for (e0, e1) in HAND_EDGES {
            assert!(e0 < 21 && e1 < 21);
        }
        for (contour, _) in FACE_CONTOURS {
            let mut seen = std::collections::HashSet::new();
            for &i in contour {
                assert!(i < 468);
                assert!(seen.insert(i), "{i} repeated");
            }
        }
    }
}

/// Face-mesh points by what they mark, where code picks one out.
pub mod mesh_point {
    /// The chin's lowest point.
    pub const CHIN: usize = 152;
    /// The face's edge at the person's right cheek (beside the ear).
    pub const RIGHT_CHEEK_EDGE: usize = 234;
    /// The face's edge at the person's left cheek.
    pub const LEFT_CHEEK_EDGE: usize = 454;
}
