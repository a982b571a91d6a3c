from .conv_stem_deit import ConvStem, ConvStemDeiT

__all__ = ['ConvStem', 'ConvStemDeiT']
