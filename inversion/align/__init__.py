"""Photos in, aligned faces out: detection, landmarks, FFHQ-style alignment (rendering back: ``editkit.render``).

    from inversion.align import align_faces
    faces = align_faces("photo.jpg", template="ffhq", size=256)   # every face, left to right
    faces[0].image, faces[0].landmarks, faces[0].box, faces[0].transform
"""
from .aligner import AlignedFace, align_face, align_faces, apply_transform
from .detection import Detection, detect_boxes, detect_faces
from .templates import TEMPLATES, AlignmentTemplate, get_template

__all__ = ["AlignedFace", "AlignmentTemplate", "Detection", "TEMPLATES", "align_face", "align_faces",
           "apply_transform", "detect_boxes", "detect_faces", "get_template"]
