from .orthogonal_projector import ORTHOGONAL_MAPS, OrthogonalProjector

__all__ = ['ORTHOGONAL_MAPS', 'OrthogonalProjector']
