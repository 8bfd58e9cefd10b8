"""Photos in, aligned faces out, edited faces back: detection, landmarks, FFHQ-style alignment, paste-back."""
from .aligner import AlignedFace, align_face, align_faces, apply_transform
from .detection import Detection, detect_boxes, detect_faces
from .templates import TEMPLATES, AlignmentTemplate, get_template

__all__ = ["AlignedFace", "AlignmentTemplate", "Detection", "TEMPLATES", "align_face", "align_faces",
           "apply_transform", "detect_boxes", "detect_faces", "get_template"]
from .paste import face_mask, paste_back, paste_mask  # noqa: E402

__all__ += ["face_mask", "paste_back", "paste_mask"]
