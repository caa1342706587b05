// Package sim is edgedepth's simulated stereo rig: a procedural world rendered on the CPU
// by ray casting, with exact ground truth (the metric depth of every left pixel and the
// left camera's pose), a live camera.Source that renders it in real time, and the
// on-disk sequence format that the simulator, `edgedepth record`, `eval` and `train`
// share. It is pure Go.
//
// # Concepts
//
// A World is built from a Config: a scene kind (Scenes: "street", "room"), a Seed, the
// image size, frame rate, field of view and stereo baseline. Everything random (layout,
// textures, colours, lighting, trajectory) derives from the seed through hash functions
// defined in this package, so a seed names the same scene on every machine and Go
// release, and other seeds are held-out scenes of the same kind.
//
//   - street: an endless road with kerbs, sidewalks, building facades with windows,
//     parked cars, poles, trees, bins and bushes, generated in 12 m segments as a
//     function of the segment index, so that a rig driving forward never leaves the
//     world. The rig drives along +z at 1.5 m/s (SpeedMPS), swaying gently, heading
//     where it goes with a slow look-around, pitch, roll and bounce. Depths about
//     2–60 m; far clip 60 m (FarM) with the last quarter fading into the horizon haze.
//   - room: a furnished room about 5–7 m by 6–8.5 m, floor, walls and ceiling
//     textured, furniture along the walls, pictures, a door, lamps, maybe a table; the
//     rig loops on an ellipse 1.4 m from the walls, looking inwards. Depths about 0.5–9 m.
//
// Frame i is the world at sim time i/FPS, captured at SimEpoch + i/FPS. Its Truth holds
// the z-depth of every left pixel in metres (0 for sky or beyond the far clip) and the
// pose of the left camera in the world (world_T_camera).
//
// Frames: the world frame is gravity-aligned with y DOWN: x to the right across the
// street, y down (the ground is the plane y = 0, so the camera is at negative y), z
// forward along the street; at yaw 0 it coincides with the camera's OpenCV axes (x
// right, y down, z forward). The right camera sits BaselineM along the left camera's x
// axis; both share rotation and intrinsics: the pair is rectified by construction.
//
// Intrinsics: pinhole, square pixels, fx = fy = (Width/2)/tan(HFOVDeg/2), principal
// point at the image centre in OpenCV's convention (pixel centres on integers:
// cx = (Width-1)/2, cy = (Height-1)/2). Defaults: 640x480, 80° horizontal (≈64°
// vertical), so fx ≈ 381.4 px. Default baselines: 0.20 m for street (a 2 px disparity
// at 40 m), 0.12 m for room (91 px at 0.5 m, within a 128-disparity search).
//
// Rendering: one ray per pixel through its centre (no anti-aliasing), nearest hit
// shaded as albedo × (ambient + Lambertian sun), the light drifting slowly in direction
// and intensity. Sky is a smooth gradient. Textures (value-noise fBm, bricks, tiles,
// planks, bands, windows, asphalt with lane markings) are functions of the surface
// point alone, filtered to the pixel footprint: unresolvable detail fades to its mean
// instead of aliasing. No effect depends on where the viewer stands (no shadows,
// specularity, vignetting or sensor noise), so a point has the same colour in both eyes
// and in neighbouring frames: the brightness constancy that block matching and
// photometric losses assume holds up to sampling. OpenCV's SGBM gets a median
// absolute relative depth error around 0.01–0.02 on non-occluded pixels of both scenes.
//
// # Lifecycle
//
// NewWorld validates the config and builds the scene; it starts nothing. Render and
// RenderInto draw a frame on the calling goroutine plus up to GOMAXPROCS-1 helpers that
// have finished when they return. NewSource wraps a World as a live camera.Source whose
// Run paces frames at FPS on the wall clock until its context ends (then returns nil);
// frames whose time passed while rendering are skipped and counted, never delivered
// late. WriteSequence renders frames to a directory; OpenSequence reads one back, and
// Sequence.Source plays it as a camera.Source.
//
// # Concurrency
//
// A World is immutable: all its methods are safe for concurrent use, and frame i is
// byte-identical whichever goroutine renders it, in whatever order, in every run of
// the same build. Across build targets the scene is the same (layout decisions compare
// values that are computed exactly) but pixels and depths may differ in their last
// bits: Go may fuse multiply-adds on arm64 or with GOAMD64=v3, which rounds
// differently.
//
// Render spreads rows over up to GOMAXPROCS goroutines. Several concurrent Render calls
// are correct but oversubscribe the CPU; WriteSequence instead renders whole frames on
// one goroutine each. A Source or Playback calls emit from the goroutine that called
// Run. A Sequence is safe for concurrent use, and SequenceWriter.WriteFrame may be
// called concurrently.
package sim
