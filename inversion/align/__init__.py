"""Photos in, aligned faces out, edited faces back: detection, landmarks, FFHQ-style alignment, paste-back.

    from inversion.align import align_faces, paste_back
    faces = align_faces("photo.jpg", template="ffhq", size=256)   # every face, left to right
    faces[0].image, faces[0].landmarks, faces[0].box, faces[0].transform
    out = paste_back(photo_array, [(faces[0], edited_crop_uint8)])
"""
from .aligner import AlignedFace, align_face, align_faces, apply_transform
from .detection import Detection, detect_boxes, detect_faces
from .paste import face_mask, paste_back, paste_mask
from .templates import TEMPLATES, AlignmentTemplate, get_template

__all__ = ["AlignedFace", "AlignmentTemplate", "Detection", "TEMPLATES", "align_face", "align_faces",
           "apply_transform", "detect_boxes", "detect_faces", "face_mask", "get_template", "paste_back",
           "paste_mask"]
